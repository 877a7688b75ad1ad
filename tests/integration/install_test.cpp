// Courier as a package (ctest -L install): `cmake --install` into a temporary prefix, then
// everything a user does with it, from the prefix alone and with no LD_LIBRARY_PATH:
// every program and library finds what it needs relative to itself (also after the
// prefix is moved), the systemd units name the prefix's binaries and pass
// `systemd-analyze verify`, and the code and the commands of README.md and
// services/plugins/WRITING_PLUGINS.md (read from the documents at test time) build an
// out-of-tree plugin and client and send jobs through a broker, worker, error sink and
// metrics collector started from the prefix.
#include <signal.h>
#include <sys/wait.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "doc_blocks.hpp"
#include "process.hpp"

namespace courier::test {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const fs::path kSource = COURIER_SOURCE_DIR;
const std::string kVersion = COURIER_VERSION;
const std::vector<std::string> kPrograms = {"courier", "courier-broker", "courier-worker", "courier-error-sink",
                                            "courier-metrics"};

struct Outcome {
  int status = -1;  // the exit status, or -1 if it did not end in time
  std::string output;  // stdout and stderr
};

std::string Trim(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

bool StartsWith(const std::string& text, const std::string& prefix) { return text.rfind(prefix, 0) == 0; }

// The installed tree, shared by the tests of this file: installed once, like a user would,
// into HOME/courier (HOME being a temporary folder the documents' "$HOME/courier" names).
class Installed : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    home_ = new TempDir();
    // HOME/build is this build, so the documents' `cmake --install build ...` runs as written.
    fs::create_directory_symlink(COURIER_BUILD_DIR, home() / "build");
    const Outcome install = RunIn(home(), "cmake --install build --prefix \"$HOME/courier\"", 10min);
    install_ok_ = install.status == 0;
    install_log_ = install.output;
  }
  static void TearDownTestSuite() {
    delete home_;
    home_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(install_ok_) << install_log_; }

  static const fs::path& home() { return home_->path(); }
  static fs::path prefix() { return home() / "courier"; }

  // The environment of everything started from the prefix: PATH leads to it, HOME and the
  // configuration (keyring) are the test's, clients find the broker through COURIER_BROKERS.
  static std::vector<std::string> Environment(const std::string& endpoint = "") {
    const char* path = std::getenv("PATH");
    std::vector<std::string> env{"HOME=" + home().string(),
                                 "PATH=" + (prefix() / "bin").string() + ":" + (path != nullptr ? path : "/usr/bin:/bin"),
                                 "XDG_CONFIG_HOME=" + (home() / ".config").string(),
                                 "PKG_CONFIG_PATH=" + (prefix() / "lib/pkgconfig").string()};
    if (!endpoint.empty()) env.push_back("COURIER_BROKERS=" + endpoint);
    return env;
  }

  // Runs a shell command in `dir` without LD_LIBRARY_PATH. Returns: its status and output.
  static Outcome RunIn(const fs::path& dir, const std::string& command, std::chrono::milliseconds timeout,
                       const std::string& endpoint = "") {
    static int counter = 0;
    const fs::path log = home_->path() / ("command-" + std::to_string(++counter) + ".log");
    ChildProcess process("/usr/bin/env", {"-u", "LD_LIBRARY_PATH", "/bin/sh", "-c", "cd '" + dir.string() + "' && " + command},
                         log, Environment(endpoint));
    const int status = process.Wait(timeout);
    Outcome outcome;
    outcome.output = process.Log();
    if (status != -1 && WIFEXITED(status)) outcome.status = WEXITSTATUS(status);
    return outcome;
  }

  // Starts a long-running command (exec'd by the shell, so its PID is the server's) in HOME.
  static std::unique_ptr<ChildProcess> Start(const std::string& name, const std::string& command,
                                             const std::string& ready, const std::string& endpoint) {
    auto process = std::make_unique<ChildProcess>(
        "/usr/bin/env", std::vector<std::string>{"-u", "LD_LIBRARY_PATH", "/bin/sh", "-c",
                                                 "cd '" + home().string() + "' && exec " + command},
        home() / (name + ".log"), Environment(endpoint));
    EXPECT_TRUE(process->WaitForLog(ready, 30s)) << command << "\n" << process->Log();
    return process;
  }

  static inline TempDir* home_ = nullptr;
  static inline bool install_ok_ = false;
  static inline std::string install_log_;
};

// Returns: the regular files of `dir` (not recursive).
std::vector<fs::path> FilesIn(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  return files;
}

bool IsElf(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
}

TEST_F(Installed, HoldsEveryProgramLibraryHeaderAndDataFile) {
  for (const std::string& program : kPrograms) EXPECT_TRUE(fs::exists(prefix() / "bin" / program)) << program;
  for (const char* file :
       {"bin/courier-cluster", "lib/libcourier.so", "lib/courier/libecho.so", "lib/courier/libtextstats.so",
        "include/courier/client.hpp", "include/courier/plugin.hpp", "include/courier/version.hpp",
        "lib/cmake/Courier/CourierConfig.cmake", "lib/cmake/Courier/CourierTargets.cmake", "lib/pkgconfig/courier.pc",
        "share/courier/schemas/services/textstats.toml", "share/courier/cluster.example.toml",
        "share/courier/systemd/courier-broker@.service", "share/courier/systemd/courier-worker@.service",
        "share/courier/systemd/courier-error-sink.service", "share/courier/systemd/courier-metrics.service",
        "share/courier/systemd/courier.target", "share/courier/configs/worker.toml",
        "share/courier/configs/broker-1.toml", "share/courier/prometheus/courier-alerts.yml",
        "share/courier/prometheus/courier-alerts.test.yml"}) {
    EXPECT_TRUE(fs::exists(prefix() / file)) << file;
  }
#if COURIER_HAVE_HELP2MAN
  for (const std::string& program : kPrograms) {
    const fs::path page = prefix() / "share/man/man1" / (program + ".1");
    ASSERT_TRUE(fs::exists(page)) << page;
    EXPECT_THAT(ReadText(page), HasSubstr(program)) << page;
  }
  EXPECT_TRUE(fs::exists(prefix() / "share/man/man1/courier-cluster.1"));
#endif
}

TEST_F(Installed, EveryProgramAndLibraryFindsItsLibrariesRelativeToItself) {
  std::vector<fs::path> elves;
  for (const char* dir : {"bin", "lib", "lib/courier"}) {
    for (const fs::path& file : FilesIn(prefix() / dir)) {
      if (IsElf(file)) elves.push_back(file);
    }
  }
  ASSERT_GE(elves.size(), kPrograms.size() + 3);
  for (const fs::path& file : elves) {
    const Outcome dynamic = RunIn(home(), "readelf -d '" + file.string() + "'", 60s);
    ASSERT_EQ(dynamic.status, 0) << dynamic.output;
    EXPECT_THAT(dynamic.output, Not(HasSubstr(COURIER_BUILD_DIR))) << file;
    EXPECT_THAT(dynamic.output, Not(HasSubstr("(RPATH)"))) << file << ": RPATH instead of RUNPATH";
    const bool needs_courier = dynamic.output.find("Shared library: [libcourier.so") != std::string::npos;
    if (needs_courier) {
      EXPECT_THAT(dynamic.output, HasSubstr("$ORIGIN")) << file;
    }
    const Outcome ldd = RunIn(home(), "ldd '" + file.string() + "'", 60s);
    EXPECT_THAT(ldd.output, Not(HasSubstr("not found"))) << file << "\n" << ldd.output;
    if (needs_courier) {
      EXPECT_THAT(ldd.output, HasSubstr(prefix().string() + "/")) << file << "\n" << ldd.output;
    }
  }
  // The tree still works once moved elsewhere: nothing in it names where it was installed.
  const fs::path moved = home() / "moved";
  fs::copy(prefix(), moved, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  for (const std::string& program : kPrograms) {
    for (const fs::path& where : {prefix(), moved}) {
      const Outcome version = RunIn(home(), "'" + (where / "bin" / program).string() + "' --version", 60s);
      EXPECT_EQ(version.status, 0) << where << " " << program << ": " << version.output;
      EXPECT_EQ(Trim(version.output), program + " " + kVersion) << where;
    }
  }
  const Outcome cluster = RunIn(home(), "courier-cluster --help", 60s);
  EXPECT_EQ(cluster.status, 0) << cluster.output;
  EXPECT_THAT(cluster.output, HasSubstr("courier-cluster"));
}

TEST_F(Installed, SystemdUnitsStartThePrefixsBinariesAndPassSystemdAnalyzeVerify) {
  const fs::path units = prefix() / "share/courier/systemd";
  const std::map<std::string, std::string> exec = {{"courier-broker@.service", "courier-broker"},
                                                   {"courier-worker@.service", "courier-worker"},
                                                   {"courier-error-sink.service", "courier-error-sink"},
                                                   {"courier-metrics.service", "courier-metrics"}};
  std::string files;
  for (const auto& [unit, program] : exec) {
    const std::string text = ReadText(units / unit);
    EXPECT_THAT(text, HasSubstr("\nExecStart=" + (prefix() / "bin" / program).string() + " ")) << unit;
    EXPECT_THAT(text, Not(HasSubstr("@COURIER_"))) << unit;
    files += " '" + (units / unit).string() + "'";
  }
  if (!fs::exists("/usr/bin/systemd-analyze")) GTEST_SKIP() << "no systemd-analyze here";
  const Outcome verify = RunIn(home(), "systemd-analyze verify" + files + " '" + (units / "courier.target").string() + "'", 120s);
  EXPECT_EQ(verify.status, 0) << verify.output;
  EXPECT_EQ(Trim(verify.output), "") << "warnings from systemd-analyze verify";
}

// The README's install, quick start and client, then WRITING_PLUGINS.md steps 3 to 5, as
// the documents write them; only the endpoint is the test's own (a free port: --bind for
// the broker, --broker for workers, COURIER_BROKERS for clients).
TEST_F(Installed, TheDocumentsPluginAndClientBuildAndServeJobsFromThePrefix) {
#if defined(__SANITIZE_ADDRESS__)
  // The docs' programs are built as a user builds them, without -fsanitize: loading an
  // ASan-built libcourier into them aborts ("ASan runtime does not come first"). The plain
  // suite runs this test.
  GTEST_SKIP() << "an ASan-built prefix cannot serve programs built without ASan";
#endif
  const std::string readme = ReadText(kSource / "README.md");
  const std::string guide = ReadText(kSource / "services/plugins/WRITING_PLUGINS.md");
  for (const auto& [path, text] : FileBlocks(readme + guide)) {
    if (path.find('/') == std::string::npos) continue;  // worker.toml and the like: not built
    fs::create_directories((home() / path).parent_path());
    std::ofstream(home() / path) << text;
  }
  for (const char* file : {"hello/hello.cpp", "hello/CMakeLists.txt", "wordcount/wordcount.cpp",
                           "wordcount/CMakeLists.txt", "wordcount/wordcount.toml"}) {
    ASSERT_TRUE(fs::exists(home() / file)) << file << " is no longer a file block of the documents";
  }

  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort());
  const Outcome keygen = RunIn(home(), "courier keygen", 60s);  // one keyring for all of them
  ASSERT_EQ(keygen.status, 0) << keygen.output;
  std::unique_ptr<ChildProcess> broker;
  std::unique_ptr<ChildProcess> worker;
  int workers_started = 0;
  auto run_block = [&](const std::string& block) {
    for (const ShellStep& step : ShellSteps(block)) {
      SCOPED_TRACE(step.command);
      if (StartsWith(step.command, "courier-broker")) {
        if (!broker) broker = Start("broker", step.command + " --bind " + endpoint, "listening on", endpoint);
      } else if (StartsWith(step.command, "courier-worker")) {
        if (worker) {
          worker->Signal(SIGTERM);
          EXPECT_NE(worker->Wait(30s), -1) << worker->Log();
        }
        worker = Start("worker-" + std::to_string(++workers_started), step.command + " --broker " + endpoint,
                       "serving [", endpoint);
      } else {
        const Outcome outcome = RunIn(home(), step.command, 10min, endpoint);
        if (step.expected) {
          EXPECT_EQ(Trim(outcome.output), *step.expected) << (worker ? worker->Log() : "");
        } else {
          EXPECT_EQ(outcome.status, 0) << outcome.output;
        }
      }
    }
  };
  auto run_section = [&](const std::string& document, const std::string& heading) {
    const std::vector<std::string> blocks = SectionBlocks(document, heading, "sh");
    ASSERT_FALSE(blocks.empty()) << "no sh block under \"" << heading << "\"";
    for (const std::string& block : blocks) run_block(block);
  };

  // The error sink and the collector, from the prefix too (their jobs come from the runs).
  const fs::path db = home() / "errors.db";
  auto sink = Start("error-sink", "courier-error-sink --broker " + endpoint + " --db '" + db.string() + "'",
                    "error sink: storing in", endpoint);
  const std::string http = "127.0.0.1:" + std::to_string(FreePort());
  auto metrics = Start("metrics", "courier-metrics --broker " + endpoint + " --http " + http, "metrics: serving",
                       endpoint);

  run_section(readme, "## Install");           // broker, the echo plugin by name, a call
  run_section(readme, "## The client SDK");    // hello: built with find_package, run
  const Outcome pkg_config = RunIn(home(), "c++ hello/hello.cpp $(pkg-config --cflags --libs courier) -o hello/hello-pc",
                                   10min, endpoint);
  ASSERT_EQ(pkg_config.status, 0) << pkg_config.output;
  const Outcome hello = RunIn(home(), "hello/hello-pc", 60s, endpoint);
  EXPECT_EQ(Trim(hello.output), "{\"n\":1} {\"n\":2}");

  run_section(guide, "## 3. Build it");
  run_section(guide, "## 4. Run it");
  run_section(guide, "## 5. Add a payload schema");
  ASSERT_TRUE(worker);
  EXPECT_THAT(worker->Log(), HasSubstr("schema " + (home() / "wordcount/wordcount.toml").string()));

  // What the runs sent reached the sink (the refused payloads) and the collector (timings).
  std::string errors;
  EXPECT_TRUE(WaitFor([&] {
    errors = RunIn(home(), "courier errors list --service wordcount", 60s, endpoint).output;
    return errors.find("invalid_payload") != std::string::npos;
  }, 30s)) << errors << sink->Log();
  std::string stages;
  EXPECT_TRUE(WaitFor([&] {
    stages = RunIn(home(), "courier metrics --service wordcount --window all", 60s, endpoint).output;
    return stages.find("handle") != std::string::npos;
  }, 30s)) << stages << metrics->Log();
}

// The installed worker finds the schemas shipped in its prefix, and never any in its
// working directory (which once was how it found them: from a source tree).
TEST_F(Installed, TheWorkerUsesThePrefixsSchemasAndNotItsWorkingDirectory) {
  const fs::path cwd_schemas = home() / "schemas/services";
  fs::create_directories(cwd_schemas);
  std::ofstream(cwd_schemas / "echo.toml") << "service = \"echo\"\n[request]\ntype = \"string\"\n";
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(FreePort());
  auto broker = Start("schema-broker", "courier-broker --bind " + endpoint, "listening on", endpoint);
  auto worker = Start("schema-worker", "courier-worker --plugin echo --plugin textstats --broker " + endpoint,
                      "serving [", endpoint);
  const std::string log = worker->Log();
  EXPECT_THAT(log, HasSubstr("schema " + (prefix() / "share/courier/schemas/services/textstats.toml").string()));
  EXPECT_THAT(log, HasSubstr("schema none"));  // echo: the working directory's file is not used
  EXPECT_THAT(log, Not(HasSubstr(cwd_schemas.string())));
  EXPECT_THAT(log, Not(HasSubstr(kSource.string())));
  const Outcome call = RunIn(home(), "courier send echo '{\"any\": 1}'", 60s, endpoint);
  EXPECT_EQ(Trim(call.output), "{\"any\":1}");
}

// courier-cluster (ops/cluster, installed) runs the prefix's own binaries and plugins.
TEST_F(Installed, TheClusterLauncherRunsThePrefixsBinaries) {
  const int port = FreePort();
  const fs::path config = home_->Write("cluster.toml", "[cluster]\nhost = \"127.0.0.1\"\n"
                                                       "[brokers.b1]\nport = " + std::to_string(port) + "\n"
                                                       "[error_sink]\nenabled = false\n[metrics]\nenabled = false\n"
                                                       "[workers.echo]\ncount = 1\nthreads = 1\n"
                                                       "[workers.echo.services.echo]\nplugin = \"echo\"\n");
  const fs::path run = home() / "cluster-run";
  // `down` whatever happens: the supervisor is a daemon of its own.
  struct Down {
    fs::path run;
    ~Down() { (void)RunIn(home(), "courier-cluster down --run-dir '" + run.string() + "'", 120s); }
  } down{run};
  const Outcome up = RunIn(home(), "courier-cluster up --config '" + config.string() + "' --run-dir '" + run.string() + "'", 120s);
  ASSERT_EQ(up.status, 0) << up.output;
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  const Outcome call = RunIn(home(), "COURIER_KEYRING='" + (run / "keyring.toml").string() +
                                         "' courier send echo '{\"via\": \"cluster\"}'", 60s, endpoint);
  EXPECT_EQ(Trim(call.output), "{\"via\":\"cluster\"}");
  const std::string supervisor = ReadText(run / "logs/supervisor.log");
  EXPECT_THAT(supervisor, HasSubstr((prefix() / "bin/courier-broker").string()));
  EXPECT_THAT(supervisor, HasSubstr((prefix() / "bin/courier-worker").string()));
  EXPECT_THAT(ReadText(run / "conf/echo-1.toml"), HasSubstr((prefix() / "share/courier/schemas/services").string()));
}

}  // namespace
}  // namespace courier::test
