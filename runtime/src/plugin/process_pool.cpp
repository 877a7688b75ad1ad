#include "process_pool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_map>
#include <optional>

#include <spdlog/spdlog.h>

#include "courier/error.hpp"
#include "frames.hpp"
#include "job_pool.hpp"

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

[[noreturn]] void ServeZygote(int control, pid_t host, const ChildMain& child_main, std::size_t max_memory) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != host) ::_exit(0);
  ::prctl(PR_SET_NAME, "courier-zygote");
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &chld, nullptr);
  const int signal_fd = ::signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  std::vector<pid_t> children;
  while (true) {
    pollfd items[2] = {{control, POLLIN, 0}, {signal_fd, POLLIN, 0}};
    if (::poll(items, 2, -1) < 0 && errno != EINTR) break;
    if (items[1].revents & POLLIN) {
      signalfd_siginfo info{};
      while (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      }
      int status = 0;
      pid_t pid = 0;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        std::erase(children, pid);
        SendNote(control, ZygoteNote{'X', pid, status}, nullptr, 0);
      }
    }
    if (items[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      char request = 0;
      const ssize_t got = ::recv(control, &request, 1, MSG_DONTWAIT);
      if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) break;  // the host is gone or done
      if (got == 1 && request == 'S') {
        SpawnChild(control, signal_fd, child_main, max_memory);
        // A child that exits at once is reaped on the next round (SIGCHLD stays pending).
      }
      // Track children to kill them when the host closes the control socket.
      int status = 0;
      pid_t pid = 0;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        std::erase(children, pid);
        SendNote(control, ZygoteNote{'X', pid, status}, nullptr, 0);
      }
    }
  }
  ::kill(0, 0);  // (no-op; children die with us through PR_SET_PDEATHSIG)
  ::_exit(0);
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

// --- the supervisor ----------------------------------------------------------------------

namespace {

struct RunningJob {
  std::uint64_t seq = 0;
  std::size_t service = 0;
  Envelope envelope;
  std::string broker;
  std::string sender;
  Clock::time_point started{};
};

struct Child {
  pid_t pid = -1;
  int link = -1;
  int log = -1;
  std::string out;  // bytes still to write to the link
  std::size_t out_offset = 0;
  std::string in;   // bytes read from the link, not yet a whole frame
  std::optional<RunningJob> job;
  std::uint64_t jobs_done = 0;
  Clock::time_point spawned{};
  std::deque<std::string> last_lines;
  std::string partial_line;
  bool retiring = false;            // recycled: no more jobs, its link is closed
  bool killed_for_deadline = false;
  std::optional<int> status;        // its wait status, once the zygote reported it
};

class Supervisor {
 public:
  Supervisor(Zygote& zygote, const ProcessPoolOptions& options, zmq::context_t& context,
             const std::string& results_endpoint, StageStats& stats, ErrorReporter& reporter, int wake_fd,
             std::mutex& mutex, std::deque<JobInput>& queue, bool& stopping)
      : zygote_(zygote),
        options_(options),
        push_(context, zmq::socket_type::push),
        stats_(stats),
        reporter_(reporter),
        wake_fd_(wake_fd),
        mutex_(mutex),
        queue_(queue),
        stopping_(stopping) {
    push_.set(zmq::sockopt::linger, 2000);
    push_.set(zmq::sockopt::sndhwm, 0);  // bounded by the credit windows; never drop a result
    push_.connect(results_endpoint);
  }

  ~Supervisor() {
    for (Child& child : children_) {
      ::kill(child.pid, SIGKILL);
      CloseChild(child);
    }
  }

  void Run() {
    while (true) {
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        while (!queue_.empty()) {
          pending_.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      const Clock::time_point now = Clock::now();
      RequestChildren(now);
      Dispatch(now);
      KillOverdue(now);
      Poll(now);
    }
  }

 private:
  void RequestChildren(Clock::time_point now) {
    if (zygote_lost_ || now < spawn_not_before_) return;
    std::size_t live = 0;
    for (const Child& child : children_) live += child.retiring || child.status ? 0 : 1;
    while (live + requested_ < options_.children) {
      const char request = 'S';
      if (::send(zygote_.control(), &request, 1, MSG_NOSIGNAL) != 1) {
        ZygoteLost("cannot ask it for a child: " + std::string(std::strerror(errno)));
        return;
      }
      ++requested_;
    }
  }

  static bool Idle(const Child& child) { return !child.job && !child.retiring && !child.status && child.link >= 0; }

  // Returns: the child `job` must go to (a non-idempotent job id goes back to the child that
  // ran it, if it still lives), or null if that child is busy.
  Child* Target(const JobInput& job) {
    if (job.service < options_.dedup.size() && options_.dedup[job.service]) {
      if (const auto found = affinity_.find(job.envelope.job_id); found != affinity_.end()) {
        for (Child& child : children_) {
          if (child.pid != found->second || child.retiring || child.status) continue;
          return Idle(child) ? &child : nullptr;
        }
      }
    }
    for (Child& child : children_) {
      if (Idle(child)) return &child;
    }
    return nullptr;
  }

  void Remember(const JobInput& job, pid_t pid, Clock::time_point now) {
    if (job.service >= options_.dedup.size() || !options_.dedup[job.service]) return;
    const DedupWindow& window = *options_.dedup[job.service];
    affinity_[job.envelope.job_id] = pid;
    remembered_.push_back({job.envelope.job_id, now + window.window});
    while (!remembered_.empty() && (remembered_.front().second <= now || remembered_.size() > window.entries)) {
      affinity_.erase(remembered_.front().first);
      remembered_.pop_front();
    }
  }

  void Dispatch(Clock::time_point now) {
    for (auto job = pending_.begin(); job != pending_.end();) {
      Child* child = Target(*job);
      if (child == nullptr) {
        ++job;  // its child is busy (or none is idle): the next job may still find one
        continue;
      }
      Remember(*job, child->pid, now);
      child->out = EncodeChildJob(*job);
      child->out_offset = 0;
      child->job = RunningJob{job->seq, job->service, std::move(job->envelope), std::move(job->broker),
                              std::move(job->sender), now};
      job = pending_.erase(job);
      Flush(*child);
    }
    if (zygote_lost_) {
      while (!pending_.empty()) {
        const JobInput& job = pending_.front();
        SendJobOutput(push_, JobRunner::MakeError(job.seq, job.envelope.job_id, ErrorCode::kWorkerCrashed,
                                                  "this host's handler processes are gone (see its log)"));
        pending_.pop_front();
      }
    }
  }

  void KillOverdue(Clock::time_point) {
    const std::uint64_t now_ms = NowUnixMs();
    const auto grace = static_cast<std::uint64_t>(options_.kill_after.count());
    for (Child& child : children_) {
      if (!child.job || child.killed_for_deadline || child.status) continue;
      if (now_ms < child.job->envelope.deadline_ms + grace) continue;
      spdlog::error("job {} of service {} is still running {} ms past its deadline: killing its handler process {}",
                    child.job->envelope.job_id.Hex(), child.job->envelope.service,
                    now_ms - child.job->envelope.deadline_ms, child.pid);
      child.killed_for_deadline = true;
      ::kill(child.pid, SIGKILL);
    }
  }

  int TimeoutMs(Clock::time_point now) const {
    std::int64_t timeout = 1000;
    const std::uint64_t now_ms = NowUnixMs();
    const auto grace = static_cast<std::uint64_t>(options_.kill_after.count());
    for (const Child& child : children_) {
      if (!child.job || child.killed_for_deadline) continue;
      const std::uint64_t due = child.job->envelope.deadline_ms + grace;
      timeout = std::min<std::int64_t>(timeout, due <= now_ms ? 0 : static_cast<std::int64_t>(due - now_ms) + 1);
    }
    if (spawn_not_before_ > now) {
      timeout = std::min<std::int64_t>(
          timeout, std::chrono::duration_cast<milliseconds>(spawn_not_before_ - now).count() + 1);
    }
    return static_cast<int>(std::max<std::int64_t>(timeout, 0));
  }

  void Poll(Clock::time_point now) {
    items_.clear();
    items_.push_back({wake_fd_, POLLIN, 0});
    items_.push_back({zygote_lost_ ? -1 : zygote_.control(), POLLIN, 0});
    for (const Child& child : children_) {
      const bool writing = child.out_offset < child.out.size();
      items_.push_back({child.link, static_cast<short>(POLLIN | (writing ? POLLOUT : 0)), 0});
      items_.push_back({child.log, POLLIN, 0});
    }
    if (::poll(items_.data(), items_.size(), TimeoutMs(now)) < 0) {
      if (errno == EINTR) return;
      throw Error(ErrorCode::kIo, std::string("poll: ") + std::strerror(errno));
    }
    if (items_[0].revents & POLLIN) {
      std::uint64_t count = 0;
      while (::read(wake_fd_, &count, sizeof count) > 0) {
      }
    }
    // Children first (their outputs, then their logs), then the zygote's notes, so a
    // child's last words are read before its exit is handled.
    for (std::size_t i = 0; i < children_.size(); ++i) {
      Child& child = children_[i];
      const short link_events = items_[2 + 2 * i].revents;
      const short log_events = items_[3 + 2 * i].revents;
      if (link_events & POLLOUT) Flush(child);
      if (link_events & (POLLIN | POLLHUP | POLLERR)) ReadLink(child);
      if (log_events & (POLLIN | POLLHUP | POLLERR)) ReadLog(child);
    }
    if (items_[1].revents & (POLLIN | POLLHUP | POLLERR)) ReadNotes();
    std::erase_if(children_, [this](Child& child) { return Finished(child); });
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
    child.out.clear();
    child.out.shrink_to_fit();
    child.out_offset = 0;
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
    }
    try {
      while (const std::optional<std::size_t> frame = CompleteChildFrame(child.in, options_.max_frame_bytes)) {
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
    if (!child.job || child.job->seq != done.seq) return;
    for (const StageSample& sample : done.samples) stats_.Replay(sample);
    for (const ErrorRecord& record : done.records) reporter_.Report(record);
    for (JobOutput& output : done.outputs) SendJobOutput(push_, std::move(output));
    child.job.reset();
    ++child.jobs_done;
    if (options_.max_jobs_per_child != 0 && child.jobs_done >= options_.max_jobs_per_child) {
      child.retiring = true;  // closing its link ends it; a fresh child takes its place
      ::close(child.link);
      child.link = -1;
    }
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
      const std::optional<ZygoteNote> note = ReceiveNote(zygote_.control(), fds);
      if (!note) return;
      switch (note->kind) {
        case 'P': {
          if (requested_ > 0) --requested_;
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
          children_.push_back(std::move(child));
          break;
        }
        case 'X':
          for (Child& child : children_) {
            if (child.pid == note->pid) child.status = note->value;
          }
          break;
        case 'E':
          if (requested_ > 0) --requested_;
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
    if (child.job) AnswerLostJob(child);
    const Clock::time_point now = Clock::now();
    const bool retired = child.retiring && WIFEXITED(*child.status);
    if (!retired && !child.killed_for_deadline) {
      spdlog::error("handler process {} {} after {} jobs{}", child.pid, DescribeStatus(*child.status),
                    child.jobs_done, child.jobs_done == 0 && now - child.spawned < std::chrono::seconds(1)
                                         ? " (at start: starting the next one later)" : "");
      if (child.jobs_done == 0 && now - child.spawned < std::chrono::seconds(1)) Backoff();
    }
    CloseChild(child);
    return true;
  }

  void AnswerLostJob(Child& child) {
    const RunningJob& job = *child.job;
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
    reporter_.Report(record);
    stats_.RecordError(job.service, Stage::kHandle);
    if (!child.killed_for_deadline) spdlog::error("job {} of service {}: {}", job.envelope.job_id.Hex(), job.envelope.service, answer);
    SendJobOutput(push_, JobRunner::MakeError(job.seq, job.envelope.job_id, record.code, answer));
    child.job.reset();
  }

  void CloseChild(Child& child) {
    if (child.link >= 0) ::close(child.link);
    if (child.log >= 0) ::close(child.log);
    child.link = child.log = -1;
  }

  void Backoff() {
    backoff_ = std::clamp(backoff_ * 2, milliseconds(100), milliseconds(5000));
    spawn_not_before_ = Clock::now() + backoff_;
  }

  void ZygoteLost(const std::string& why) {
    if (zygote_lost_) return;
    zygote_lost_ = true;
    spdlog::critical("the handler zygote (pid {}) is gone ({}); jobs of process-isolated services fail until the "
                     "host restarts", zygote_.pid(), why);
    for (Child& child : children_) {
      if (!child.status) ::kill(child.pid, SIGKILL);
      if (!child.status) child.status = SIGKILL;  // no note will come for it now
    }
  }

  Zygote& zygote_;
  const ProcessPoolOptions& options_;
  zmq::socket_t push_;
  StageStats& stats_;
  ErrorReporter& reporter_;
  int wake_fd_;
  std::mutex& mutex_;
  std::deque<JobInput>& queue_;
  bool& stopping_;

  std::deque<JobInput> pending_;
  std::vector<Child> children_;
  std::unordered_map<JobId, pid_t, JobIdHash> affinity_;  // non-idempotent job id → the child that ran it
  std::deque<std::pair<JobId, Clock::time_point>> remembered_;  // affinity_ in the order added, with expiry
  std::vector<pollfd> items_;
  std::size_t requested_ = 0;
  bool zygote_lost_ = false;
  milliseconds backoff_{50};
  Clock::time_point spawn_not_before_{};
};

}  // namespace

ProcessPool::ProcessPool(std::unique_ptr<Zygote> zygote, ProcessPoolOptions options, zmq::context_t& context,
                         std::string results_endpoint, StageStats& stats, ErrorReporter& reporter)
    : zygote_(std::move(zygote)),
      options_(options),
      context_(context),
      results_endpoint_(std::move(results_endpoint)),
      stats_(stats),
      reporter_(reporter) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw Error(ErrorCode::kIo, std::string("eventfd: ") + std::strerror(errno));
  thread_ = std::thread([this] { Loop(); });
}

ProcessPool::~ProcessPool() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void ProcessPool::Submit(JobInput job) {
  {
    std::lock_guard lock(shared_.mutex);
    shared_.queue.push_back(std::move(job));
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
}

void ProcessPool::Stop() {
  {
    std::lock_guard lock(shared_.mutex);
    shared_.stopping = true;
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto written = ::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  zygote_.reset();  // the zygote and any child left die with it
}

void ProcessPool::Loop() noexcept {
  try {
    Supervisor supervisor(*zygote_, options_, context_, results_endpoint_, stats_, reporter_, wake_fd_,
                          shared_.mutex, shared_.queue, shared_.stopping);
    supervisor.Run();
  } catch (const std::exception& e) {
    spdlog::critical("the handler process supervisor stopped: {}", e.what());
  }
}

}  // namespace courier::detail
