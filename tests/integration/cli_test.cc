// Integration tests of the command line: -t, --version, --help, bad configs.
#include <gtest/gtest.h>

#include "integration/harness.h"

namespace sluice::testing {
namespace {

TEST(Cli, VersionAndHelp) {
  CommandResult version = runSluice({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.output.rfind("sluice ", 0), 0u) << version.output;
  CommandResult help = runSluice({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("-t, --test"), std::string::npos);
  CommandResult bad = runSluice({"--bogus"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("unknown option --bogus"), std::string::npos);
}

TEST(Cli, TestModeAcceptsTheDefaultConfig) {
  std::string path = std::string(SLUICE_SOURCE_DIR) + "/conf/sluice.yaml";
  CommandResult result = runSluice({"-t", "-c", path});
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("test is successful"), std::string::npos);
}

TEST(Cli, TestModeReportsLocatedErrors) {
  TempDir dir;
  std::string path = dir.write("bad.yaml",
                               "listeners:\n"
                               "  - address: 127.0.0.1:99999\n"
                               "    routes: [{upstream: ap}]\n"
                               "upstreams:\n"
                               "  app:\n"
                               "    servers: [{address: 127.0.0.1:9001}]\n");
  CommandResult result = runSluice({"-t", "-c", path});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find(path + ":2:14: listeners[0].address:"), std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("no upstream named \"ap\" (did you mean \"app\"?)"),
            std::string::npos)
      << result.output;
  EXPECT_NE(result.output.find("test failed"), std::string::npos);
}

TEST(Cli, SyntaxErrorIsLocated) {
  TempDir dir;
  std::string path = dir.write("bad.yaml", "listeners: [\n  - address: x\n");
  CommandResult result = runSluice({"-t", "-c", path});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find(path + ":"), std::string::npos) << result.output;
  EXPECT_NE(result.output.find("invalid YAML"), std::string::npos) << result.output;
}

TEST(Cli, MissingConfigFileIsReported) {
  CommandResult result = runSluice({"-t", "-c", "/nonexistent/sluice.yaml"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.output.find("/nonexistent/sluice.yaml: cannot read"), std::string::npos)
      << result.output;
}

TEST(Cli, PortInUseFailsToStart) {
  int port = freePort();
  SluiceProcess first;
  std::string yaml = "listeners:\n  - address: 127.0.0.1:" + std::to_string(port) +
                     "\n    routes: [{respond: {status: 200}}]\n";
  ASSERT_TRUE(first.start(yaml, port));
  TempDir dir;
  CommandResult second = runSluice({"-c", dir.write("s.yaml", yaml)});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.output.find("cannot bind 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << second.output;
}

}  // namespace
}  // namespace sluice::testing
