// The lean forker's request/reply messages (benchmarks/forker/protocol.hpp):
// pure parsing and formatting.
#include <gtest/gtest.h>

#include <string>

#include "benchmarks/forker/protocol.hpp"

using namespace rmapbench::forker;

namespace {

ParseError parse_text(const std::string& text, Message* m) { return parse(text.data(), text.size(), m); }

std::string formatted(const Message& m) {
  char buf[kMaxMessageBytes];
  const size_t len = format(m, buf, sizeof buf);
  return std::string(buf, len);
}

}  // namespace

TEST(ForkerProtocol, ParsesVerbNumbersAndText) {
  Message m;
  ASSERT_EQ(parse_text("forked 20 123456 -7 0 9223372036854775807", &m), ParseError::none);
  EXPECT_TRUE(m.is("forked"));
  ASSERT_EQ(m.count, 5);
  EXPECT_EQ(m.numbers[0], 20);
  EXPECT_EQ(m.numbers[2], -7);
  EXPECT_EQ(m.numbers[4], 9223372036854775807LL);
  EXPECT_STREQ(m.text, "");

  ASSERT_EQ(parse_text("error 0 12 -1 0\nmmap of VMA 3 of 1000: Cannot allocate memory\nsecond line", &m),
            ParseError::none);
  EXPECT_TRUE(m.is("error"));
  EXPECT_EQ(m.count, 4);
  EXPECT_STREQ(m.text, "mmap of VMA 3 of 1000: Cannot allocate memory\nsecond line");

  ASSERT_EQ(parse_text("quit", &m), ParseError::none);
  EXPECT_TRUE(m.is("quit"));
  EXPECT_EQ(m.count, 0);
  ASSERT_EQ(parse_text("ok\n", &m), ParseError::none);
  EXPECT_EQ(m.count, 0);
  ASSERT_EQ(parse_text("ready -9223372036854775808 3", &m), ParseError::none);
  EXPECT_EQ(m.numbers[0], -9223372036854775807LL - 1);
}

TEST(ForkerProtocol, RejectsMalformedMessages) {
  Message m;
  EXPECT_EQ(parse_text("", &m), ParseError::empty);
  EXPECT_EQ(parse_text(std::string(kMaxMessageBytes, 'a'), &m), ParseError::too_long);
  EXPECT_EQ(parse_text("Fork 1 0", &m), ParseError::bad_verb);
  EXPECT_EQ(parse_text(" fork 1", &m), ParseError::bad_verb);
  EXPECT_EQ(parse_text("averyverylongverb 1", &m), ParseError::bad_verb);
  EXPECT_EQ(parse_text("\ntext", &m), ParseError::bad_verb);
  EXPECT_EQ(parse_text("fork 1  0", &m), ParseError::bad_number);
  EXPECT_EQ(parse_text("fork 1 ", &m), ParseError::bad_number);
  EXPECT_EQ(parse_text("fork 1x", &m), ParseError::bad_number);
  EXPECT_EQ(parse_text("fork -", &m), ParseError::bad_number);
  EXPECT_EQ(parse_text("fork 0x10", &m), ParseError::bad_number);
  EXPECT_EQ(parse_text("fork 9223372036854775808", &m), ParseError::bad_number);
  EXPECT_EQ(parse_text("fork -9223372036854775809", &m), ParseError::bad_number);
  EXPECT_EQ(parse_text(std::string("fork 1\0", 7), &m), ParseError::bad_number);
  EXPECT_EQ(parse_text("forked 1 2 3 4 5 6 7 8 9 10 11 12 13", &m), ParseError::too_many_numbers);
  ASSERT_EQ(parse_text("forked 1 2 3 4 5 6 7 8 9 10 11 12", &m), ParseError::none);
  EXPECT_EQ(m.count, kMaxNumbers);
  // A failed parse leaves the message as it was.
  Message untouched = make("ok", {});
  EXPECT_NE(parse_text("fork x", &untouched), ParseError::none);
  EXPECT_TRUE(untouched.is("ok"));
}

TEST(ForkerProtocol, FormatRoundTrips) {
  const Message sent = make("error", {kErrorChildFailed, 0, 4242, 9}, "forked child");
  EXPECT_EQ(formatted(sent), "error 2 0 4242 9\nforked child");
  Message got;
  const std::string wire = formatted(sent);
  ASSERT_EQ(parse(wire.data(), wire.size(), &got), ParseError::none);
  ErrorReply e;
  ASSERT_TRUE(read_error(got, &e));
  EXPECT_EQ(e.kind, kErrorChildFailed);
  EXPECT_EQ(e.pid, 4242);
  EXPECT_EQ(e.wait_status, 9);
  EXPECT_STREQ(e.text, "forked child");

  EXPECT_EQ(formatted(make("fork", {1, 0})), "fork 1 0");
  EXPECT_FALSE(read_error(make("ok", {}), &e));
  EXPECT_FALSE(read_error(make("error", {1, 2}), &e)) << "an error reply carries four numbers";
}

TEST(ForkerProtocol, LongTextIsCutNeverTheNumbers) {
  const std::string long_text(3 * kMaxMessageBytes, 'x');
  const Message m = make("error", {0, 5, -1, 0}, long_text.c_str());
  const std::string wire = formatted(m);
  EXPECT_LT(wire.size(), kMaxMessageBytes);
  Message got;
  ASSERT_EQ(parse(wire.data(), wire.size(), &got), ParseError::none);
  EXPECT_EQ(got.count, 4);
  EXPECT_EQ(got.numbers[1], 5);

  char small[8];
  EXPECT_EQ(format(make("forked", {123456789, 1}), small, sizeof small), 0u) << "does not fit";
  EXPECT_EQ(format(make("fork", {1}), small, sizeof small), 6u);
}
