// keyring_race_test.cpp — several processes creating one key file at the same moment
// (issue 12): worker hosts started together on a fresh machine must agree on key id 1, and
// `courier keygen` run twice at once must never overwrite the winner's file.
//
// Each iteration forks separate processes (not threads: the race is between processes)
// that block on a shared start pipe until the parent closes its write end, so they all
// start within the same moment. Each reports one fixed-size record through a result pipe
// and _exit()s. Every iteration is bounded by a deadline; children still alive then are
// killed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "courier/error.hpp"
#include "courier/keyring.hpp"
#include "process.hpp"

namespace courier {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr int kProcesses = 3;
constexpr int kIterations = 100;
constexpr auto kIterationDeadline = 10s;

// One child's answer. Written with a single write() of less than PIPE_BUF bytes, so the
// records of several children never interleave in the shared result pipe.
struct Report {
  std::int32_t index = -1;
  std::uint8_t ok = 0;                // the call returned (1) or threw (0)
  std::uint16_t error_code = 0;       // courier::ErrorCode when it threw a courier::Error
  std::uint32_t active = 0;           // the active key id it got
  char fingerprint[8] = {};           // Fingerprint of the active key of the keyring it got
  char error[160] = {};               // what() when it threw
};
static_assert(sizeof(Report) < PIPE_BUF);

using ChildWork = std::function<void(Report&)>;

[[noreturn]] void RunChild(int index, int start_fd, int result_fd, const ChildWork& work) {
  char byte = 0;
  for (;;) {  // block until the parent closes the start pipe: EOF is the starting shot
    const ssize_t n = ::read(start_fd, &byte, 1);
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  Report report;
  report.index = index;
  try {
    work(report);
    report.ok = 1;
  } catch (const Error& error) {
    report.error_code = static_cast<std::uint16_t>(error.code());
    std::strncpy(report.error, error.what(), sizeof report.error - 1);
  } catch (const std::exception& error) {
    std::strncpy(report.error, error.what(), sizeof report.error - 1);
  }
  const ssize_t written = ::write(result_fd, &report, sizeof report);
  ::_exit(written == static_cast<ssize_t>(sizeof report) ? 0 : 3);
}

// Forks kProcesses children running `work`, starts them together and collects their
// reports. Returns: a description of what went wrong with the processes themselves (empty
// when every child reported and exited 0 before the deadline).
std::string Race(const ChildWork& work, std::vector<Report>& reports) {
  int start[2];
  int result[2];
  if (::pipe2(start, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
  if (::pipe2(result, O_CLOEXEC) != 0) {
    ::close(start[0]);
    ::close(start[1]);
    return std::string("pipe: ") + std::strerror(errno);
  }
  std::vector<pid_t> children;
  std::string problem;
  for (int i = 0; i < kProcesses; ++i) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(start[1]);  // else this child's own copy would keep the start pipe open
      ::close(result[0]);
      RunChild(i, start[0], result[1], work);
    }
    if (pid < 0) {
      problem = std::string("fork: ") + std::strerror(errno);
      break;
    }
    children.push_back(pid);
  }
  ::close(start[0]);
  ::close(result[1]);
  ::close(start[1]);  // go

  const auto deadline = std::chrono::steady_clock::now() + kIterationDeadline;
  const auto remaining_ms = [&] {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()));
  };
  // Read until every child's write end is closed (EOF) or the deadline passes.
  std::string bytes;
  for (;;) {
    pollfd readable{result[0], POLLIN, 0};
    const int ready = ::poll(&readable, 1, remaining_ms());
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      if (problem.empty()) problem = "children did not all report within the deadline";
      break;
    }
    char buffer[4096];
    const ssize_t n = ::read(result[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(result[0]);
  for (std::size_t offset = 0; offset + sizeof(Report) <= bytes.size(); offset += sizeof(Report)) {
    Report report;
    std::memcpy(&report, bytes.data() + offset, sizeof report);
    reports.push_back(report);
  }

  // Reap every child by the deadline; kill whatever is still running then.
  std::vector<pid_t> running = children;
  const bool all_exited = test::WaitFor(
      [&] {
        for (auto it = running.begin(); it != running.end();) {
          int status = 0;
          const pid_t done = ::waitpid(*it, &status, WNOHANG);
          if (done == 0) {
            ++it;
            continue;
          }
          if (done == *it && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) && problem.empty()) {
            problem = "child " + std::to_string(*it) + " did not exit 0 (status " +
                      std::to_string(status) + ")";
          }
          it = running.erase(it);
        }
        return running.empty();
      },
      std::chrono::milliseconds(std::max(remaining_ms(), 100)));
  if (!all_exited) {
    for (const pid_t pid : running) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    if (problem.empty()) problem = "children still running at the deadline; killed";
  }
  if (problem.empty() && reports.size() != kProcesses) {
    problem = std::to_string(reports.size()) + " of " + std::to_string(kProcesses) + " children reported";
  }
  return problem;
}

std::string Hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// Returns: the names in `dir` other than `expected` (stray temp files, partial copies...).
std::vector<std::string> StrayFiles(const fs::path& dir, const std::string& expected) {
  std::vector<std::string> stray;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator(dir, error)) {
    if (entry.path().filename() != expected) stray.push_back(entry.path().filename().string());
  }
  return stray;
}

std::string Joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// One race of LoadOrCreate. Returns: what went wrong, or "" when all agree with the disk.
std::string LoadOrCreateRace() {
  test::TempDir dir;
  const fs::path file = dir.path() / "courier" / "keyring.toml";  // parent not created yet
  std::vector<Report> reports;
  std::string problem = Race(
      [&](Report& report) {
        const Keyring keyring = Keyring::LoadOrCreate(file);
        const std::string fingerprint = keyring.Fingerprint(keyring.active_key_id());
        std::memcpy(report.fingerprint, fingerprint.data(), sizeof report.fingerprint);
        report.active = keyring.active_key_id();
      },
      reports);
  if (!problem.empty()) return problem;
  for (const Report& report : reports) {
    if (report.ok == 0) return "child " + std::to_string(report.index) + " failed: " + report.error;
  }
  std::string on_disk;
  std::uint32_t active_on_disk = 0;
  try {
    const Keyring loaded = Keyring::Load(file);
    active_on_disk = loaded.active_key_id();
    on_disk = loaded.Fingerprint(active_on_disk);
  } catch (const std::exception& error) {
    return std::string("loading the file afterwards failed: ") + error.what();
  }
  std::string seen;
  bool agree = true;
  for (const Report& report : reports) {
    const std::string fingerprint(report.fingerprint, sizeof report.fingerprint);
    seen += " " + Hex(fingerprint) + "(active " + std::to_string(report.active) + ")";
    agree = agree && fingerprint == on_disk && report.active == active_on_disk;
  }
  if (!agree) return "children got" + seen + "; the file holds " + Hex(on_disk);
  if (const auto stray = StrayFiles(file.parent_path(), "keyring.toml"); !stray.empty()) {
    return "stray files left behind: " + Joined(stray);
  }
  return "";
}

// One race of GenerateKeyFile (what `courier keygen` does). Returns: what went wrong, or "".
std::string GenerateKeyFileRace() {
  test::TempDir dir;
  const fs::path file = dir.path() / "keyring.toml";
  std::vector<Report> reports;
  std::string problem = Race(
      [&](Report& report) {
        report.active = GenerateKeyFile(file);
        // The winner reads back what it wrote at once: a later overwrite by a loser would
        // make the file differ from this when the parent looks after everyone exited.
        const Keyring written = Keyring::Load(file);
        const std::string fingerprint = written.Fingerprint(written.active_key_id());
        std::memcpy(report.fingerprint, fingerprint.data(), sizeof report.fingerprint);
      },
      reports);
  if (!problem.empty()) return problem;
  const Report* winner = nullptr;
  int winners = 0;
  for (const Report& report : reports) {
    if (report.ok != 0) {
      winner = &report;
      ++winners;
    } else if (report.error_code != static_cast<std::uint16_t>(ErrorCode::kIo)) {
      return "child " + std::to_string(report.index) + " failed unexpectedly: " + report.error;
    }
  }
  if (winners != 1) return std::to_string(winners) + " of " + std::to_string(kProcesses) + " keygens succeeded";
  std::string on_disk;
  std::uint32_t active_on_disk = 0;
  try {
    const Keyring loaded = Keyring::Load(file);
    active_on_disk = loaded.active_key_id();
    on_disk = loaded.Fingerprint(active_on_disk);
  } catch (const std::exception& error) {
    return std::string("loading the file afterwards failed: ") + error.what();
  }
  const std::string won(winner->fingerprint, sizeof winner->fingerprint);
  if (won != on_disk || winner->active != active_on_disk) {
    return "the winner wrote " + Hex(won) + " but the file holds " + Hex(on_disk);
  }
  if (const auto stray = StrayFiles(dir.path(), "keyring.toml"); !stray.empty()) {
    return "stray files left behind: " + Joined(stray);
  }
  return "";
}

void RunIterations(const std::function<std::string()>& iteration) {
  int failed = 0;
  std::string first;
  for (int i = 0; i < kIterations; ++i) {
    const std::string problem = iteration();
    if (problem.empty()) continue;
    if (failed++ == 0) first = "iteration " + std::to_string(i) + ": " + problem;
    if (failed <= 5) ADD_FAILURE() << "iteration " << i << ": " << problem;
  }
  EXPECT_EQ(failed, 0) << failed << " of " << kIterations << " iterations failed; first: " << first;
}

TEST(KeyringRaceTest, ThreeProcessesStartedTogetherAgreeOnOneKey) { RunIterations(LoadOrCreateRace); }

TEST(KeyringRaceTest, ThreeKeygensStartedTogetherCreateOneFile) { RunIterations(GenerateKeyFileRace); }

}  // namespace
}  // namespace courier
