// rmapbench: the CLI library's dispatcher (runners/cli/dispatch.cpp) is the program.
#include "runners/cli/command.hpp"

int main(int argc, char** argv) { return rmapbench::cli::run_rmapbench(argc, argv); }
