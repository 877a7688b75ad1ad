// The sample alerting rules (ops/prometheus/courier-alerts.yml) are valid Prometheus rules
// and fire when they should: `promtool check rules` and `promtool test rules` on the unit
// tests beside them. promtool comes with Debian's `prometheus` package (ops/bootstrap
// installs it); without it on PATH the test is skipped, saying so.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <sstream>

#include "process.hpp"

namespace courier::test {
namespace {

using namespace std::chrono_literals;

std::optional<std::filesystem::path> FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::filesystem::path candidate = std::filesystem::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

class PrometheusRulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    promtool_ = FindOnPath("promtool");
    const std::filesystem::path unpacked = std::filesystem::path(COURIER_SOURCE_DIR) / ".tools" / "bin" / "promtool";
    if (!promtool_ && ::access(unpacked.c_str(), X_OK) == 0) promtool_ = unpacked;
    if (!promtool_) {
      GTEST_SKIP() << "promtool is neither on PATH nor in .tools/bin (ops/bootstrap takes it from Debian's "
                      "prometheus package)";
    }
  }

  // Runs promtool with `args`. Returns: its exit status (-1: did not exit in time).
  int Promtool(const std::vector<std::string>& args, std::string& output) {
    ChildProcess run(*promtool_, args, dir_.path() / "promtool.log");
    const int status = run.Wait(60s);
    output = run.Log();
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  const std::filesystem::path rules_dir_ = std::filesystem::path(COURIER_SOURCE_DIR) / "ops" / "prometheus";
  std::optional<std::filesystem::path> promtool_;
  TempDir dir_;
};

TEST_F(PrometheusRulesTest, RulesFileIsValid) {
  std::string output;
  EXPECT_EQ(Promtool({"check", "rules", (rules_dir_ / "courier-alerts.yml").string()}, output), 0) << output;
  EXPECT_NE(output.find("SUCCESS"), std::string::npos) << output;
}

TEST_F(PrometheusRulesTest, AlertsFireAsTheirUnitTestsExpect) {
  std::string output;
  EXPECT_EQ(Promtool({"test", "rules", (rules_dir_ / "courier-alerts.test.yml").string()}, output), 0) << output;
}

}  // namespace
}  // namespace courier::test
