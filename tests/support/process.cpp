#include "process.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace courier::test {

namespace fs = std::filesystem;

fs::path BinaryPath(const std::string& name) { return fs::path(COURIER_BIN_DIR) / name; }

fs::path PluginPath(const std::string& name) {
  return fs::path(COURIER_PLUGIN_DIR) / ("lib" + name + ".so");
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string FreeEndpoint() { return "tcp://127.0.0.1:" + std::to_string(FreePort()); }

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

const fs::path& TestStateHome() {
  static const TempDir state;
  return state.path();
}

TempDir::TempDir() {
  std::random_device random;
  path_ = fs::temp_directory_path() /
          ("courier-test-" + std::to_string(::getpid()) + "-" + std::to_string(random()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (std::getenv("COURIER_KEEP_TEST_DIRS") == nullptr) fs::remove_all(path_, ignored);
}

fs::path TempDir::Write(const std::string& name, const std::string& text) const {
  const fs::path file = path_ / name;
  fs::create_directories(file.parent_path());
  std::ofstream(file) << text;
  return file;
}

ChildProcess::ChildProcess(const fs::path& binary, std::vector<std::string> args, fs::path log_file,
                           std::vector<std::string> env)
    : log_file_(std::move(log_file)) {
  std::vector<std::string> argv_strings;
  argv_strings.push_back(binary.string());
  for (auto& arg : args) argv_strings.push_back(std::move(arg));
  std::vector<char*> argv;
  for (auto& arg : argv_strings) argv.push_back(arg.data());
  argv.push_back(nullptr);

  // `env` wins over the inherited environment. Brokers keep a job store under
  // XDG_STATE_HOME: each test process gets its own, so no test sees another's jobs (a
  // broker restarted on the same endpoint within one test does, as it should).
  auto key_of = [](std::string_view entry) { return entry.substr(0, entry.find('=')); };
  std::vector<std::string> env_strings;
  for (auto& entry : env) env_strings.push_back(std::move(entry));
  auto given = [&](std::string_view key) {
    return std::any_of(env_strings.begin(), env_strings.end(),
                       [&](const std::string& entry) { return key_of(entry) == key; });
  };
  if (!given("XDG_STATE_HOME")) env_strings.push_back("XDG_STATE_HOME=" + TestStateHome().string());
  const std::size_t overrides = env_strings.size();
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string_view key = key_of(*entry);
    if (std::none_of(env_strings.begin(), env_strings.begin() + static_cast<std::ptrdiff_t>(overrides),
                     [&](const std::string& set) { return key_of(set) == key; })) {
      env_strings.emplace_back(*entry);
    }
  }
  std::vector<char*> envp;
  for (auto& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_file_.c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  const int result = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (result != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + binary.string() + ": " + std::strerror(result));
  }
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(other.pid_), status_(other.status_), log_file_(std::move(other.log_file_)) {
  other.pid_ = -1;
}

ChildProcess::~ChildProcess() { Kill(); }

void ChildProcess::Signal(int signal) const {
  if (pid_ > 0) ::kill(pid_, signal);
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status_, 0);
  pid_ = -1;
}

int ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return status_;
  int status = -1;
  const bool exited = WaitFor(
      [&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, timeout);
  if (!exited) return -1;
  status_ = status;
  pid_ = -1;
  return status_;
}

bool ChildProcess::Running() {
  if (pid_ <= 0) return false;
  int status = 0;
  if (::waitpid(pid_, &status, WNOHANG) == pid_) {
    status_ = status;
    pid_ = -1;
    return false;
  }
  return true;
}

std::string ChildProcess::Log() const {
  std::ifstream file(log_file_);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

bool ChildProcess::WaitForLog(const std::string& text, std::chrono::milliseconds timeout) const {
  return WaitFor([&] { return Log().find(text) != std::string::npos; }, timeout);
}

}  // namespace courier::test
