#include "process_pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <optional>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "courier/error.hpp"
#include "frames.hpp"

namespace courier::detail {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// What the zygote tells the host, one SOCK_SEQPACKET message each.
struct ZygoteNote {
  char kind = 0;       // 'P': child forked (its link and log descriptors attached); 'X': child exited; 'E': fork failed
  std::int32_t pid = 0;
  std::int32_t value = 0;  // 'X': wait status; 'E': errno
};

constexpr std::size_t kLastLines = 20;
constexpr std::size_t kMaxLine = 500;

bool SendNote(int socket, const ZygoteNote& note, const int* fds, std::size_t fd_count) {
  iovec io{const_cast<ZygoteNote*>(&note), sizeof note};
  msghdr message{};
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  if (fd_count > 0) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(fd_count * sizeof(int));
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(fd_count * sizeof(int));
    std::memcpy(CMSG_DATA(header), fds, fd_count * sizeof(int));
  }
  while (true) {
    const ssize_t sent = ::sendmsg(socket, &message, MSG_NOSIGNAL);
    if (sent >= 0) return true;
    if (errno != EINTR) return false;
  }
}

// Returns: the note, with up to two descriptors; nullopt when nothing is waiting; kind 0
// when the zygote is gone.
std::optional<ZygoteNote> ReceiveNote(int socket, std::vector<int>& fds) {
  ZygoteNote note;
  iovec io{&note, sizeof note};
  msghdr message{};
  message.msg_iov = &io;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t received = 0;
  do {
    received = ::recvmsg(socket, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  } while (received < 0 && errno == EINTR);
  if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return std::nullopt;
  if (received != static_cast<ssize_t>(sizeof note)) return ZygoteNote{};
  fds.clear();
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    const std::size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (std::size_t i = 0; i < count; ++i) {
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(header) + i * sizeof(int), sizeof fd);
      fds.push_back(fd);
    }
  }
  return note;
}

bool WriteAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t written = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
  return true;
}

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

std::string DescribeStatus(int status) {
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const char* name = ::sigabbrev_np(signal);
    return std::string("killed by SIG") + (name != nullptr ? name : "?") + " (signal " + std::to_string(signal) +
           (WCOREDUMP(status) ? ", core dumped)" : ")");
  }
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

// --- the zygote's side -------------------------------------------------------------------

void SpawnChild(int control, int signal_fd, const ChildMain& child_main, std::size_t max_memory) {
  int link[2] = {-1, -1};
  int log[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, link) != 0 || ::pipe2(log, O_CLOEXEC) != 0) {
    SendNote(control, ZygoteNote{'E', 0, errno}, nullptr, 0);
    for (const int fd : {link[0], link[1], log[0], log[1]}) {
      if (fd >= 0) ::close(fd);
    }
    return;
  }
  const pid_t zygote = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(control);
    ::close(signal_fd);
    ::close(link[0]);
    ::close(log[0]);
    ::dup2(log[1], STDOUT_FILENO);
    ::dup2(log[1], STDERR_FILENO);
    ::close(log[1]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != zygote) ::_exit(0);
    if (max_memory > 0) {
      const rlimit limit{max_memory, max_memory};
      ::setrlimit(RLIMIT_DATA, &limit);
    }
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    ::pthread_sigmask(SIG_UNBLOCK, &chld, nullptr);  // a handler may start processes of its own
    child_main(link[1]);
    std::fflush(nullptr);
    ::_exit(0);
  }
  const int saved = errno;
  ::close(link[1]);
  ::close(log[1]);
  if (pid < 0) {
    SendNote(control, ZygoteNote{'E', 0, saved}, nullptr, 0);
  } else {
    const int fds[2] = {link[0], log[0]};
    SendNote(control, ZygoteNote{'P', pid, 0}, fds, 2);
  }
  ::close(link[0]);
  ::close(log[0]);
}

// Reports every child that ended to the host ('X'), with its wait status.
void ReapChildren(int control) {
  int status = 0;
  pid_t pid = 0;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) SendNote(control, ZygoteNote{'X', pid, status}, nullptr, 0);
}

[[noreturn]] void ServeZygote(int control, pid_t host, const ChildMain& child_main, std::size_t max_memory) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != host) ::_exit(0);
  ::prctl(PR_SET_NAME, "courier-zygote");
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &chld, nullptr);
  const int signal_fd = ::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  while (true) {
    pollfd items[2] = {{control, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (::poll(items, 2, -1) < 0 && errno != EINTR) break;
    if (items[1].revents & POLLIN) {
      signalfd_siginfo info{};
      while (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      }
      ReapChildren(control);
    }
    if (items[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char request = 0;
      const ssize_t got = ::recv(control, &request, 1, MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) break;  // the host is gone or done
      if (got == 1 && request == 'S') SpawnChild(control, signal_fd, child_main, max_memory);
    }
  }
  ::_exit(0);  // the children die with us (PR_SET_PDEATHSIG)
}

}  // namespace

// --- Zygote ------------------------------------------------------------------------------

Zygote::Zygote(ChildMain child_main, std::size_t max_memory) {
  int pair[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    throw Error(ErrorCode::kIo, std::string("socketpair: ") + std::strerror(errno));
  }
  const pid_t host = ::getpid();
  std::fflush(nullptr);  // nothing buffered is written twice
  pid_ = ::fork();
  if (pid_ < 0) {
    const int saved = errno;
    ::close(pair[0]);
    ::close(pair[1]);
    throw Error(ErrorCode::kIo, std::string("cannot fork the handler zygote: ") + std::strerror(saved));
  }
  if (pid_ == 0) {
    ::close(pair[0]);
    ServeZygote(pair[1], host, child_main, max_memory);
  }
  ::close(pair[1]);
  control_ = pair[0];
}

Zygote::~Zygote() {
  if (control_ >= 0) ::close(control_);
  if (pid_ > 0) {
    // Its children die with it (PR_SET_PDEATHSIG); it is ours to reap.
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

// --- the child's loop --------------------------------------------------------------------

void ServeChild(int link, std::size_t max_frame, const std::function<ChildDone(JobInput&)>& run) noexcept {
  std::string buffer;
  char chunk[64 * 1024];
  try {
    while (true) {
      std::optional<std::size_t> frame;
      while (!(frame = CompleteChildFrame(buffer, max_frame))) {
        const ssize_t got = ::read(link, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return;  // the host closed the link: time to go
        buffer.append(chunk, static_cast<std::size_t>(got));
      }
      JobInput job = DecodeChildJob(std::string_view(buffer).substr(0, *frame));
      buffer.erase(0, *frame);
      const ChildDone done = run(job);
      if (!WriteAll(link, EncodeChildDone(done))) return;
    }
  } catch (const std::exception& e) {
    spdlog::critical("handler process {}: {}", ::getpid(), e.what());
  }
}

// --- the pool ----------------------------------------------------------------------------

namespace {

struct Child {
  pid_t pid = -1;
  int link = -1;
  int log = -1;
  std::string out;  // bytes still to write to the link
  std::size_t out_offset = 0;
  std::string in;   // bytes read from the link, not yet a whole frame
  // Jobs written to it and not answered, oldest first. A child runs them in order and
  // answers in order, so the first is the one running; the others have not started.
  std::deque<JobInput> jobs;
  std::uint64_t jobs_done = 0;
  Clock::time_point spawned{};
  std::deque<std::string> last_lines;
  std::string partial_line;
  bool retiring = false;            // recycled: no more jobs, its link is closed
  bool killed_for_deadline = false;
  std::optional<int> status;        // its wait status, once the zygote reported it
};

}  // namespace

// Everything the pool holds; the ProcessPool methods are its I/O loop's hooks.
struct ProcessPool::State {
  State(std::unique_ptr<Zygote> zygote_in, ProcessPoolOptions options_in, StageStats& stats_in,
        ErrorReporter& reporter_in, Output output_in)
      : zygote(std::move(zygote_in)),
        options(std::move(options_in)),
        stats(stats_in),
        reporter(reporter_in),
        output(std::move(output_in)) {}

  std::unique_ptr<Zygote> zygote;
  ProcessPoolOptions options;
  StageStats& stats;
  ErrorReporter& reporter;
  Output output;

  std::deque<JobInput> pending;
  std::vector<Child> children;
  std::size_t polled = 0;  // children whose descriptors the last AppendPollItems listed
  std::unordered_map<JobId, pid_t, JobIdHash> affinity;  // non-idempotent job id → the child that ran it
  std::deque<std::pair<JobId, Clock::time_point>> remembered;  // affinity in the order added, with expiry
  std::size_t requested = 0;
  bool zygote_lost = false;
  milliseconds backoff{50};
  Clock::time_point spawn_not_before{};

  void RequestChildren(Clock::time_point now) {
    if (zygote_lost || now < spawn_not_before) return;
    std::size_t live = 0;
    for (const Child& child : children) live += child.retiring || child.status ? 0 : 1;
    while (live + requested < options.children) {
      const char request = 'S';
      if (::send(zygote->control(), &request, 1, MSG_NOSIGNAL) != 1) {
        ZygoteLost("cannot ask it for a child: " + std::string(std::strerror(errno)));
        return;
      }
      ++requested;
    }
  }

  bool HasRoom(const Child& child) const {
    return !child.retiring && !child.status && child.link >= 0 && !child.killed_for_deadline &&
           child.jobs.size() < options.prefetch &&
           (options.max_jobs_per_child == 0 || child.jobs_done + child.jobs.size() < options.max_jobs_per_child);
  }

  // Returns: the child `job` must go to, or null if none has room: the child that ran a
  // non-idempotent job id before (if it still lives), else the one with the fewest jobs
  // (an idle one first, so a job waits behind another only when every child is busy).
  Child* Target(const JobInput& job) {
    if (job.service < options.dedup.size() && options.dedup[job.service]) {
      if (const auto found = affinity.find(job.envelope.job_id); found != affinity.end()) {
        for (Child& child : children) {
          if (child.pid != found->second || child.retiring || child.status) continue;
          return HasRoom(child) ? &child : nullptr;
        }
      }
    }
    Child* best = nullptr;
    for (Child& child : children) {
      if (HasRoom(child) && (best == nullptr || child.jobs.size() < best->jobs.size())) best = &child;
    }
    return best;
  }

  void Remember(const JobInput& job, pid_t pid, Clock::time_point now) {
    if (job.service >= options.dedup.size() || !options.dedup[job.service]) return;
    const DedupWindow& window = *options.dedup[job.service];
    affinity[job.envelope.job_id] = pid;
    remembered.push_back({job.envelope.job_id, now + window.window});
    while (!remembered.empty() && (remembered.front().second <= now || remembered.size() > window.entries)) {
      affinity.erase(remembered.front().first);
      remembered.pop_front();
    }
  }

  void Dispatch(Clock::time_point now) {
    for (auto job = pending.begin(); job != pending.end();) {
      Child* child = Target(*job);
      if (child == nullptr) {
        ++job;  // its child is busy (or none is idle): the next job may still find one
        continue;
      }
      Remember(*job, child->pid, now);
      if (child->out_offset == child->out.size()) {
        child->out.clear();
        child->out_offset = 0;
      }
      child->out += EncodeChildJob(*job);
      child->jobs.push_back(std::move(*job));
      job = pending.erase(job);
      Flush(*child);
    }
    if (zygote_lost) {
      while (!pending.empty()) {
        const JobInput& job = pending.front();
        output(JobRunner::MakeError(job.seq, job.envelope.job_id, ErrorCode::kWorkerCrashed,
                                    "this host's handler processes are gone (see its log)"));
        pending.pop_front();
      }
    }
  }

  void KillOverdue() {
    const std::uint64_t now_ms = NowUnixMs();
    const auto grace = static_cast<std::uint64_t>(options.kill_after.count());
    for (Child& child : children) {
      if (child.jobs.empty() || child.killed_for_deadline || child.status) continue;
      const Envelope& running = child.jobs.front().envelope;
      if (now_ms < running.deadline_ms + grace) continue;
      spdlog::error("job {} of service {} is still running {} ms past its deadline: killing its handler process {}",
                    running.job_id.Hex(), running.service, now_ms - running.deadline_ms, child.pid);
      child.killed_for_deadline = true;
      ::kill(child.pid, SIGKILL);
    }
  }

  milliseconds Timeout(Clock::time_point now) const {
    std::int64_t timeout = 1000;
    const std::uint64_t now_ms = NowUnixMs();
    const auto grace = static_cast<std::uint64_t>(options.kill_after.count());
    for (const Child& child : children) {
      if (child.jobs.empty() || child.killed_for_deadline) continue;
      const std::uint64_t due = child.jobs.front().envelope.deadline_ms + grace;
      timeout = std::min<std::int64_t>(timeout, due <= now_ms ? 0 : static_cast<std::int64_t>(due - now_ms) + 1);
    }
    if (spawn_not_before > now) {
      timeout = std::min<std::int64_t>(timeout,
                                       std::chrono::duration_cast<milliseconds>(spawn_not_before - now).count() + 1);
    }
    return milliseconds(std::max<std::int64_t>(timeout, 0));
  }

  void Flush(Child& child) {
    while (child.out_offset < child.out.size()) {
      const ssize_t written = ::send(child.link, child.out.data() + child.out_offset,
                                     child.out.size() - child.out_offset, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (written < 0 && errno == EINTR) continue;
      if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (written <= 0) return;  // the child is gone: its exit note finishes the job
      child.out_offset += static_cast<std::size_t>(written);
    }
  }

  void ReadLink(Child& child) {
    if (child.link < 0) return;
    char chunk[64 * 1024];
    while (true) {
      const ssize_t got = ::read(child.link, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (got <= 0) {  // it died (or exited): its exit note tells how
        ::close(child.link);
        child.link = -1;
        break;
      }
      child.in.append(chunk, static_cast<std::size_t>(got));
      if (static_cast<std::size_t>(got) < sizeof chunk) break;  // drained: spare a read that would say EAGAIN
    }
    try {
      while (const std::optional<std::size_t> frame = CompleteChildFrame(child.in, options.max_frame_bytes)) {
        ChildDone done = DecodeChildDone(std::string_view(child.in).substr(0, *frame));
        child.in.erase(0, *frame);
        Complete(child, std::move(done));
      }
    } catch (const std::exception& e) {
      spdlog::error("handler process {} sent a malformed answer ({}); replacing it", child.pid, e.what());
      ::kill(child.pid, SIGKILL);
    }
  }

  void Complete(Child& child, ChildDone done) {
    if (child.jobs.empty() || child.jobs.front().seq != done.seq) return;
    for (const StageSample& sample : done.samples) stats.Replay(sample);
    for (const ErrorRecord& record : done.records) reporter.Report(record);
    child.jobs.pop_front();
    ++child.jobs_done;
    if (options.max_jobs_per_child != 0 && child.jobs_done >= options.max_jobs_per_child) {
      child.retiring = true;  // closing its link ends it; a fresh child takes its place
      ::close(child.link);
      child.link = -1;
    }
    for (JobOutput& out : done.outputs) output(std::move(out));
  }

  void ReadLog(Child& child) {
    if (child.log < 0) return;
    char chunk[16 * 1024];
    while (true) {
      const ssize_t got = ::read(child.log, chunk, sizeof chunk);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (got <= 0) {
        ::close(child.log);
        child.log = -1;
        return;
      }
      // The child's own log lines go on to the host's stderr as they are.
      [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, chunk, static_cast<std::size_t>(got));
      for (ssize_t i = 0; i < got; ++i) {
        if (chunk[i] == '\n') {
          child.last_lines.push_back(std::move(child.partial_line));
          child.partial_line.clear();
          if (child.last_lines.size() > kLastLines) child.last_lines.pop_front();
        } else if (child.partial_line.size() < kMaxLine) {
          child.partial_line += chunk[i];
        }
      }
    }
  }

  void ReadNotes() {
    std::vector<int> fds;
    while (true) {
      const std::optional<ZygoteNote> note = ReceiveNote(zygote->control(), fds);
      if (!note) return;
      switch (note->kind) {
        case 'P': {
          if (requested > 0) --requested;
          if (fds.size() != 2) {
            for (const int fd : fds) ::close(fd);
            continue;
          }
          Child child;
          child.pid = note->pid;
          child.link = fds[0];
          child.log = fds[1];
          SetNonBlocking(child.link);
          SetNonBlocking(child.log);
          child.spawned = Clock::now();
          children.push_back(std::move(child));
          break;
        }
        case 'X':
          for (Child& child : children) {
            if (child.pid == note->pid) child.status = note->value;
          }
          break;
        case 'E':
          if (requested > 0) --requested;
          spdlog::error("cannot start a handler process: {}", std::strerror(note->value));
          Backoff();
          break;
        default:
          ZygoteLost("it stopped answering");
          return;
      }
    }
  }

  // Returns: whether the child is gone for good (its job answered, its descriptors closed).
  bool Finished(Child& child) {
    if (!child.status) return false;
    ReadLink(child);  // an answer it wrote just before exiting still counts
    ReadLog(child);
    if (!child.jobs.empty()) AnswerLostJob(child);
    // The jobs queued behind the lost one never started: other children run them.
    while (!child.jobs.empty()) {
      pending.push_front(std::move(child.jobs.back()));
      child.jobs.pop_back();
    }
    const Clock::time_point now = Clock::now();
    const bool retired = child.retiring && WIFEXITED(*child.status);
    if (!retired && !child.killed_for_deadline) {
      const bool at_start = child.jobs_done == 0 && now - child.spawned < std::chrono::seconds(1);
      spdlog::error("handler process {} {} after {} jobs{}", child.pid, DescribeStatus(*child.status),
                    child.jobs_done, at_start ? " (at start: starting the next one later)" : "");
      if (at_start) Backoff();
    }
    CloseChild(child);
    return true;
  }

  void AnswerLostJob(Child& child) {
    const Clock::time_point failed_at = Clock::now();  // error_capture: the loss seen → its record built
    const JobInput& job = child.jobs.front();
    std::string lines;
    if (!child.partial_line.empty()) child.last_lines.push_back(child.partial_line);
    for (const std::string& line : child.last_lines) lines += "\n  " + line;
    ErrorRecord record;
    record.job_id = job.envelope.job_id;
    record.service = job.envelope.service;
    record.broker = job.broker;
    record.sender = job.sender;
    record.attempt = job.envelope.attempt;
    record.trace_id = job.envelope.trace_id;
    record.stage = Stage::kHandle;
    record.at_ms = NowUnixMs();
    std::string answer;
    if (child.killed_for_deadline) {
      record.code = ErrorCode::kDeadlineExceeded;
      answer = "the handler was still running " + std::to_string(record.at_ms - job.envelope.deadline_ms) +
               " ms past the job's deadline; its process was killed";
    } else {
      record.code = ErrorCode::kWorkerCrashed;
      answer = "the handler's process " + DescribeStatus(*child.status) + " while running this job";
    }
    record.message = answer + (lines.empty() ? "" : "; its last log lines:" + lines);
    if (record.message.size() > 4000) record.message.resize(4000);
    stats.Record(job.service, Stage::kErrorCapture, Clock::now() - failed_at);
    reporter.Report(record);
    stats.RecordError(job.service, Stage::kHandle);
    if (!child.killed_for_deadline) {
      spdlog::error("job {} of service {}: {}", job.envelope.job_id.Hex(), job.envelope.service, answer);
    }
    JobOutput lost = JobRunner::MakeError(job.seq, job.envelope.job_id, record.code, answer);
    child.jobs.pop_front();
    output(std::move(lost));
  }

  static void CloseChild(Child& child) {
    if (child.link >= 0) ::close(child.link);
    if (child.log >= 0) ::close(child.log);
    child.link = child.log = -1;
  }

  void Backoff() {
    backoff = std::clamp(backoff * 2, milliseconds(100), milliseconds(5000));
    spawn_not_before = Clock::now() + backoff;
  }

  void ZygoteLost(const std::string& why) {
    if (zygote_lost) return;
    zygote_lost = true;
    spdlog::critical("the handler zygote (pid {}) is gone ({}); jobs of process-isolated services fail until the "
                     "host restarts", zygote->pid(), why);
    for (Child& child : children) {
      if (child.status) continue;
      ::kill(child.pid, SIGKILL);
      child.status = SIGKILL;  // no note will come for it now
    }
  }
};

ProcessPool::ProcessPool(std::unique_ptr<Zygote> zygote, ProcessPoolOptions options, StageStats& stats,
                         ErrorReporter& reporter, Output output)
    : state_(std::make_unique<State>(std::move(zygote), std::move(options), stats, reporter, std::move(output))) {
  state_->RequestChildren(Clock::now());
}

ProcessPool::~ProcessPool() { Stop(); }

void ProcessPool::Submit(JobInput job) {
  state_->pending.push_back(std::move(job));
  state_->Dispatch(Clock::now());
}

void ProcessPool::AppendPollItems(std::vector<zmq::pollitem_t>& items) {
  State& state = *state_;
  items.push_back({nullptr, state.zygote_lost || !state.zygote ? -1 : state.zygote->control(), ZMQ_POLLIN, 0});
  for (const Child& child : state.children) {
    const bool writing = child.out_offset < child.out.size();
    items.push_back({nullptr, child.link, static_cast<short>(ZMQ_POLLIN | (writing ? ZMQ_POLLOUT : 0)), 0});
    items.push_back({nullptr, child.log, ZMQ_POLLIN, 0});
  }
  state.polled = state.children.size();
}

void ProcessPool::OnPoll(const zmq::pollitem_t* items) {
  State& state = *state_;
  if (!state.zygote) return;
  // Children first (their answers, then their logs), then the zygote's notes, so a child's
  // last words are read before its exit is handled.
  for (std::size_t i = 0; i < state.polled && i < state.children.size(); ++i) {
    Child& child = state.children[i];
    const short link_events = items[1 + 2 * i].revents;
    const short log_events = items[2 + 2 * i].revents;
    if (link_events & ZMQ_POLLOUT) state.Flush(child);
    if (link_events & (ZMQ_POLLIN | ZMQ_POLLERR)) state.ReadLink(child);
    if (log_events & (ZMQ_POLLIN | ZMQ_POLLERR)) state.ReadLog(child);
  }
  if (items[0].revents & (ZMQ_POLLIN | ZMQ_POLLERR)) state.ReadNotes();
  Tick();
}

std::chrono::milliseconds ProcessPool::Tick() {
  State& state = *state_;
  if (!state.zygote) return milliseconds(1000);
  const Clock::time_point now = Clock::now();
  std::erase_if(state.children, [&state](Child& child) { return state.Finished(child); });
  state.KillOverdue();
  state.RequestChildren(now);
  state.Dispatch(now);
  return state.Timeout(now);
}

std::chrono::milliseconds ProcessPool::NextTimer() const {
  return state_->zygote ? state_->Timeout(Clock::now()) : milliseconds(1000);
}

void ProcessPool::Stop() {
  if (!state_ || !state_->zygote) return;
  for (Child& child : state_->children) {
    if (!child.status) ::kill(child.pid, SIGKILL);
    State::CloseChild(child);
  }
  state_->children.clear();
  state_->zygote.reset();  // the zygote, and any child it was starting, die with it
}

}  // namespace courier::detail
