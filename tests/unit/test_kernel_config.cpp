// Kernel config parsing/reading (plain and gzip) and variant detection.
#include <gtest/gtest.h>
#include <sys/utsname.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.hpp"
#include "kernels/config/kernel_config.hpp"
#include "kernels/config/variant.hpp"

namespace fs = std::filesystem;
using namespace rmapbench::kernels;

using rmapbench::testing::slurp;
namespace {

const std::string kData = std::string(RMAPBENCH_TEST_DATA_DIR) + "/host/";

using rmapbench::testing::TempDir;

void write_gz(const std::string& path, const std::string& text) {
  gzFile gz = gzopen(path.c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(gz), Z_OK);
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

}  // namespace

TEST(KernelConfigParse, ReadsValuesNotSetAndQuotedStrings) {
  ConfigMap m = parse_kernel_config(slurp(kData + "config_small.txt"));
  EXPECT_EQ(m.at("CONFIG_KSM"), "y");
  EXPECT_EQ(m.at("CONFIG_HWPOISON_INJECT"), "m");
  EXPECT_EQ(m.at("CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS"), "n");
  EXPECT_EQ(m.at("CONFIG_DEBUG_VM"), "n");
  EXPECT_EQ(m.at("CONFIG_HZ"), "250");
  EXPECT_EQ(m.at("CONFIG_CC_VERSION_TEXT"), "\"gcc (Debian 12.2.0-14) 12.2.0\"");
  EXPECT_EQ(m.size(), 13u);
  EXPECT_EQ(m.count("CONFIG_ANON_VMA_LAZY"), 0u);
}

TEST(KernelConfigParse, EmptyAndGarbageGiveNoOptions) {
  EXPECT_TRUE(parse_kernel_config("").empty());
  EXPECT_TRUE(parse_kernel_config("\n\n# comment\n").empty());
  static const char kGzipHeaderThenGarbage[] = "\x1f\x8b\x08\0\xff\xfe garbage";
  EXPECT_TRUE(parse_kernel_config(std::string(kGzipHeaderThenGarbage, sizeof kGzipHeaderThenGarbage - 1)).empty());
  ConfigMap m = parse_kernel_config(
      "CONFIG_=y\nCONFIGX=y\nCONFIG_NO_EQUALS\n# CONFIG_A is set\n# CONFIG_ is not set\nCONFIG_BAD NAME=y\n");
  EXPECT_TRUE(m.empty());
}

TEST(KernelConfigParse, ToleratesCrlfAndEmptyValue) {
  ConfigMap m = parse_kernel_config("CONFIG_A=y\r\n# CONFIG_B is not set\r\nCONFIG_C=\n");
  EXPECT_EQ(m.at("CONFIG_A"), "y");
  EXPECT_EQ(m.at("CONFIG_B"), "n");
  EXPECT_EQ(m.at("CONFIG_C"), "");
}

TEST(KernelConfigRead, PlainFile) {
  auto cfg = read_kernel_config_file(kData + "config_small.txt");
  ASSERT_TRUE(cfg) << cfg.status().message();
  EXPECT_EQ(cfg->source, kData + "config_small.txt");
  EXPECT_EQ(cfg->options.at("CONFIG_MEMORY_FAILURE"), "y");
}

TEST(KernelConfigRead, GzipFileMatchesPlain) {
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  std::string text = slurp(kData + "config_small.txt");
  write_gz(dir.path + "/config.gz", text);
  auto cfg = read_kernel_config_file(dir.path + "/config.gz");
  ASSERT_TRUE(cfg) << cfg.status().message();
  EXPECT_EQ(cfg->options, parse_kernel_config(text));
}

TEST(KernelConfigRead, TruncatedGzipIsAnError) {
  TempDir dir;
  std::string text = slurp(kData + "config_small.txt");
  for (int i = 0; i < 50; ++i) text += "CONFIG_FILLER_" + std::to_string(i) + "=y\n";
  write_gz(dir.path + "/full.gz", text);
  std::string gz = slurp(dir.path + "/full.gz");
  write_file(dir.path + "/cut.gz", gz.substr(0, gz.size() / 2));
  auto cfg = read_kernel_config_file(dir.path + "/cut.gz");
  ASSERT_FALSE(cfg);
  EXPECT_NE(cfg.status().message().find(dir.path + "/cut.gz"), std::string::npos) << cfg.status().message();
}

TEST(KernelConfigRead, CorruptGzipIsAnError) {
  TempDir dir;
  write_gz(dir.path + "/full.gz", slurp(kData + "config_small.txt"));
  std::string gz = slurp(dir.path + "/full.gz");
  for (size_t i = 12; i < gz.size() - 8; ++i) gz[i] = static_cast<char>(gz[i] ^ 0x5a);
  write_file(dir.path + "/bad.gz", gz);
  EXPECT_FALSE(read_kernel_config_file(dir.path + "/bad.gz"));
}

TEST(KernelConfigRead, EmptyGarbageAndMissingFilesAreErrors) {
  TempDir dir;
  write_file(dir.path + "/empty", "");
  write_file(dir.path + "/garbage", "this is not a kernel config\n\x01\x02\x03");
  auto empty = read_kernel_config_file(dir.path + "/empty");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.status().message().find("no CONFIG_ lines"), std::string::npos);
  EXPECT_FALSE(read_kernel_config_file(dir.path + "/garbage"));
  auto missing = read_kernel_config_file(dir.path + "/missing");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().err(), ENOENT);
}

TEST(KernelConfigRead, FallsBackAndExplainsEveryAttempt) {
  TempDir dir;
  auto second = read_kernel_config({dir.path + "/config.gz", kData + "config_small.txt"});
  ASSERT_TRUE(second) << second.status().message();
  EXPECT_EQ(second->source, kData + "config_small.txt");

  auto none = read_kernel_config({dir.path + "/config.gz", dir.path + "/config-6.1.0"});
  ASSERT_FALSE(none);
  const std::string& msg = none.status().message();
  EXPECT_NE(msg.find(dir.path + "/config.gz"), std::string::npos) << msg;
  EXPECT_NE(msg.find(dir.path + "/config-6.1.0"), std::string::npos) << msg;
  EXPECT_FALSE(read_kernel_config({}));
}

TEST(KernelConfigRead, DefaultPathsAreProcThenBoot) {
  struct utsname u {};
  ASSERT_EQ(uname(&u), 0);
  auto paths = default_config_paths();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], "/proc/config.gz");
  EXPECT_EQ(paths[1], std::string("/boot/config-") + u.release);
}

TEST(KernelConfigRead, ThisHost) {
  auto cfg = read_kernel_config();
  if (!cfg) GTEST_SKIP() << cfg.status().message();
  EXPECT_GT(cfg->options.size(), 100u);
  EXPECT_TRUE(cfg->options.count("CONFIG_MMU"));
}

TEST(Variant, FromConfigAndSwitch) {
  ConfigMap lazy{{"CONFIG_ANON_VMA_LAZY", "y"}};
  ConfigMap stock{{"CONFIG_KSM", "y"}};
  ConfigMap lazy_off_in_config{{"CONFIG_ANON_VMA_LAZY", "n"}};
  VariantSwitch on{"/proc/sys/vm/anon_vma_lazy", "1"}, off{"/sys/kernel/mm/anon_vma/lazy", "0"};

  EXPECT_EQ(variant_from(lazy, std::nullopt), kVariantLazy);
  EXPECT_EQ(variant_from(lazy, on), kVariantLazy);
  EXPECT_EQ(variant_from(lazy, off), kVariantLazyOff);
  EXPECT_EQ(variant_from(lazy, VariantSwitch{"x", "off"}), kVariantLazyOff);
  EXPECT_EQ(variant_from(stock, std::nullopt), kVariantStock);
  EXPECT_EQ(variant_from(lazy_off_in_config, on), kVariantStock);
  EXPECT_EQ(variant_from({}, on), kVariantLazy);
  EXPECT_EQ(variant_from({}, off), kVariantLazyOff);
  EXPECT_EQ(variant_from({}, std::nullopt), kVariantUnknown);
}

TEST(Variant, ProbesTheDocumentedPaths) {
  const auto& paths = anon_vma_lazy_switch_paths();
  ASSERT_EQ(paths.size(), 2u);
  EXPECT_EQ(paths[0], "/sys/kernel/mm/anon_vma/lazy");
  EXPECT_EQ(paths[1], "/proc/sys/vm/anon_vma_lazy");
  // No lazy kernel here: without the option, detection says stock.
  if (!find_anon_vma_lazy_switch()) {
    EXPECT_EQ(detect_variant({{"CONFIG_ANON_VMA_LAZY", "n"}}), kVariantStock);
  }
}
