// process.hpp — start the real Courier binaries from integration tests and clean up.
//
// A ChildProcess is started with posix_spawn, its stdout+stderr go to a log file under the
// test's temporary directory, and the destructor sends SIGKILL to its PID and reaps it, so
// a failing test never leaves a process behind. Thread-safety: one owner thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace courier::test {

// Returns: build/bin/NAME (from the COURIER_BIN_DIR compile definition).
std::filesystem::path BinaryPath(const std::string& name);
// Returns: build/lib/courier/NAME.so.
std::filesystem::path PluginPath(const std::string& name);

// Returns: a TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read it back).
int FreePort();
// Returns: "tcp://127.0.0.1:" + a free port.
std::string FreeEndpoint();

// Polls `condition` every few milliseconds until it holds or `timeout` passes.
// Returns: whether it held. Never sleep to synchronise; wait on a condition with this.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  // Writes `text` to path()/name and returns the file's path.
  std::filesystem::path Write(const std::string& name, const std::string& text) const;

 private:
  std::filesystem::path path_;
};

// Returns: this test process's XDG_STATE_HOME for the processes it starts (a temporary
// folder, removed at exit): where their brokers keep their job stores.
const std::filesystem::path& TestStateHome();

class ChildProcess {
 public:
  // Starts `binary` with `args`; output goes to `log_file`. `env` entries ("K=V") are added
  // to the inherited environment and win over it; XDG_STATE_HOME is TestStateHome() unless
  // `env` sets it. Throws std::runtime_error if it cannot start.
  ChildProcess(const std::filesystem::path& binary, std::vector<std::string> args,
               std::filesystem::path log_file, std::vector<std::string> env = {});
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&&) = delete;
  ChildProcess(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }
  void Signal(int signal) const;
  // SIGKILL and reap. Idempotent.
  void Kill();
  // Waits up to `timeout` for exit. Returns: the exit status (as from waitpid), or -1 if it
  // is still running.
  int Wait(std::chrono::milliseconds timeout);
  bool Running();
  // Returns: the log so far (for assertions and for printing on failure).
  std::string Log() const;
  // Waits until the log contains `text`. Returns: whether it did in time.
  bool WaitForLog(const std::string& text, std::chrono::milliseconds timeout) const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::filesystem::path log_file_;
};

}  // namespace courier::test
