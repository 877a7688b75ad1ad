// What every Courier executable's command line promises (issue 17): `--version` prints
// "NAME VERSION" and exits 0, `--log-format json` makes its log lines JSON objects, and any
// bad flag or value exits 2 (never CLI11's own 105/109), with the usage error on stderr.
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "process.hpp"

namespace courier::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

struct Program {
  std::string name;
  // Arguments that make it log at least one line soon after it starts; {DIR} and {EP} are
  // replaced by a temporary folder and a free endpoint.
  std::vector<std::string> run_args;
  std::string first_log;  // a message it logs once running
  bool server = true;     // runs until SIGTERM (else: exits by itself)
};

std::ostream& operator<<(std::ostream& out, const Program& program) { return out << program.name; }

const Program kPrograms[] = {
    {"courier-broker", {"--bind", "{EP}", "--data-dir", "{DIR}/store"}, "listening on"},
    {"courier-worker", {"--plugin", "echo", "--broker", "{EP}"}, "serving ["},
    {"courier-error-sink", {"--broker", "{EP}", "--db", "{DIR}/errors.db"},
     "error sink: storing in"},
    {"courier-metrics", {"--broker", "{EP}", "--http="}, "metrics: HTTP is off"},
    // The CLI logs (to stderr) what it is about to use, with --verbose.
    {"courier", {"--verbose", "--broker", "{EP}", "--deadline", "300ms",
                 "--failover-timeout", "300ms", "ping"}, "", false},
};

struct Exit {
  int status = -1;
  std::string output;
};

Exit RunToEnd(const TempDir& dir, const std::string& name, std::vector<std::string> args) {
  static int counter = 0;
  ChildProcess process(BinaryPath(name), std::move(args), dir.path() / ("run-" + std::to_string(++counter) + ".log"),
                       {"XDG_CONFIG_HOME=" + dir.path().string()});
  const int status = process.Wait(60s);
  Exit run;
  run.output = process.Log();
  if (status != -1 && WIFEXITED(status)) run.status = WEXITSTATUS(status);
  return run;
}

class CommandLine : public ::testing::TestWithParam<Program> {};

TEST_P(CommandLine, VersionPrintsTheNameAndTheVersion) {
  TempDir dir;
  const Exit run = RunToEnd(dir, GetParam().name, {"--version"});
  EXPECT_EQ(run.status, 0) << run.output;
  EXPECT_EQ(run.output, GetParam().name + " " + COURIER_VERSION + "\n");
}

TEST_P(CommandLine, BadFlagsAndValuesExitTwo) {
  TempDir dir;
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--no-such-flag"}, {"--log-format", "xml"}, {"--log-format"}, {"unexpected-argument"}}) {
    const Exit run = RunToEnd(dir, GetParam().name, args);
    EXPECT_EQ(run.status, 2) << args.front() << ": " << run.output;
    EXPECT_FALSE(run.output.empty()) << "a usage error says what is wrong";
  }
}

TEST_P(CommandLine, LogFormatJsonWritesOneJsonObjectPerLine) {
  TempDir dir;
  const std::string endpoint = FreeEndpoint();
  std::vector<std::string> args{"--log-format", "json"};
  for (std::string arg : GetParam().run_args) {
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"{DIR}", dir.path().string()},
                                   std::pair<std::string, std::string>{"{EP}", endpoint}}) {
      if (const auto at = arg.find(from); at != std::string::npos) arg.replace(at, from.size(), to);
    }
    args.push_back(arg);
  }
  std::string log;
  if (GetParam().server) {
    ChildProcess process(BinaryPath(GetParam().name), args, dir.path() / "server.log",
                         {"XDG_CONFIG_HOME=" + dir.path().string()});
    ASSERT_TRUE(process.WaitForLog(GetParam().first_log, 20s)) << process.Log();
    process.Signal(SIGTERM);
    EXPECT_NE(process.Wait(30s), -1) << process.Log();
    log = process.Log();
  } else {
    const Exit run = RunToEnd(dir, GetParam().name, args);
    ASSERT_NE(run.status, -1) << run.output;  // ping: no broker is there, so 3 (unavailable)
    log = run.output;
  }
  std::istringstream lines(log);
  int json_lines = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("{\"ts\":", 0) == 0) {
      ++json_lines;
      EXPECT_EQ(line.back(), '}') << line;
    } else if (GetParam().server) {
      ADD_FAILURE() << "not a JSON log line: " << line;  // a server writes nothing else
    }
  }
  EXPECT_GT(json_lines, 0) << log;
}

INSTANTIATE_TEST_SUITE_P(EveryExecutable, CommandLine, ::testing::ValuesIn(kPrograms),
                         [](const ::testing::TestParamInfo<Program>& info) {
                           std::string name;
                           for (const char c : info.param.name) name += c == '-' ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace courier::test
