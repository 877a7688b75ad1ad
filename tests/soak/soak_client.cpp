// courier-soak-client: the one client stream of ops/soak. It submits numbered echo jobs
// through the real courier::Client SDK (several brokers, failover) with a bounded number in
// flight, for a bounded time, and checks every answer.
//
//   courier-soak-client --broker EP [--broker EP]... --duration SECONDS
//                       [--concurrency N] [--deadline-ms MS] [--max-attempts N]
//                       [--max-retries N] [--rate JOBS_PER_S] [--chaos-file PATH]
//                       [--failures-file PATH]
//
// Each job's payload is {"n": number, "nonce": 16 random bytes, "pad": random string}; the
// echo plugin returns it unchanged. The contract checked (runtime/include/courier/client.hpp,
// PROTOCOL.md §6.4): every job is answered exactly once, ok, with its own number and nonce.
// An error of any code, a second answer, a reply with the wrong content, or a job still
// unanswered when the wait ends (deadline + 15 s after the last submission) is a failure,
// printed with its number and code.
//
// The keyring is the zero-config default ($XDG_CONFIG_HOME/courier/keyring.toml, created if
// missing): ops/soak starts this client together with the worker hosts on an empty config
// directory so that they race to create it.
//
// Output: a progress line every 5 s, one line per failure (the first 200; all of them go to
// --failures-file), then a summary: jobs sent, ok, failed by code, p50/p99/max latency of the
// ok jobs, the client's counters, and the chaos events ops/soak wrote to --chaos-file.
// Exit status: 0 when every job was answered ok exactly once, 1 otherwise, 2 on bad usage.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "courier/client.hpp"
#include "courier/error.hpp"
#include "courier/value.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::vector<std::string> brokers;
  double duration_s = 60;
  std::size_t concurrency = 32;
  std::uint64_t deadline_ms = 60000;
  std::uint32_t max_attempts = 100;
  std::uint32_t max_retries = 100;
  std::size_t pad_max = 256;
  double rate = 1000;  // jobs submitted per second at most; 0: as fast as the window allows
  std::string chaos_file;
  std::string failures_file;
  std::size_t print_failures = 200;
};

// Wall-clock time of day with milliseconds, to line failures up with ops/soak's chaos log.
std::string Now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&seconds, &tm);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return text;
}

std::string OneLine(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return text;
}

// What a job's answer is checked against, kept until its first answer.
struct JobRecord {
  std::string nonce;
  std::string pad;
};

class Soak {
 public:
  explicit Soak(Options options) : options_(std::move(options)) {}

  int Run() {
    courier::ClientOptions client_options;
    client_options.brokers = options_.brokers;
    client_options.deadline = std::chrono::milliseconds(options_.deadline_ms);
    client_options.max_attempts = options_.max_attempts;
    client_options.retry.max_retries = options_.max_retries;
    client_options.max_in_flight = std::max<std::size_t>(options_.concurrency * 2, 64);
    client_options.report = false;  // no courier.errors / courier.metrics in the soak cluster
    client_options.Validate();

    auto client = std::make_unique<courier::Client>(client_options);
    std::printf("%s soak-client: %zu brokers, concurrency %zu, deadline %llu ms, max_attempts %u, "
                "max_retries %u, submitting for %.0f s\n",
                Now().c_str(), options_.brokers.size(), options_.concurrency,
                static_cast<unsigned long long>(options_.deadline_ms), options_.max_attempts,
                options_.max_retries, options_.duration_s);
    std::fflush(stdout);

    std::mt19937_64 random(std::random_device{}());
    const auto started = Clock::now();
    const auto submit_until = started + std::chrono::duration_cast<Clock::duration>(
                                            std::chrono::duration<double>(options_.duration_s));
    auto next_progress = started + std::chrono::seconds(5);

    std::uint64_t number = 0;
    const auto interval = options_.rate > 0 ? std::chrono::duration_cast<Clock::duration>(
                                                  std::chrono::duration<double>(1.0 / options_.rate))
                                            : Clock::duration::zero();
    auto next_submit = started;
    while (Clock::now() < submit_until) {
      if (Clock::now() >= next_progress) {
        Progress();
        next_progress += std::chrono::seconds(5);
      }
      if (interval > Clock::duration::zero()) {
        if (Clock::now() < next_submit) {
          std::this_thread::sleep_until(std::min({next_submit, submit_until, next_progress}));
          continue;
        }
        // Catch up after a stall, but never in a burst of more than a second's worth.
        next_submit = std::max(next_submit + interval, Clock::now() - std::chrono::seconds(1));
      }
      {
        std::unique_lock lock(mutex_);
        changed_.wait_until(lock, std::min(submit_until, next_progress),
                            [&] { return in_flight_ < options_.concurrency; });
      }
      if (in_flight() >= options_.concurrency) continue;
      SubmitOne(*client, number++, random);
    }

    // Every job is answered by its deadline at the latest (the client enforces it); wait
    // that long, plus a margin, and call whatever is still open unanswered.
    const auto wait_until = Clock::now() + std::chrono::milliseconds(options_.deadline_ms) +
                            std::chrono::seconds(15);
    std::printf("%s soak-client: submitted %llu jobs; waiting for %zu in flight\n", Now().c_str(),
                static_cast<unsigned long long>(number), in_flight());
    std::fflush(stdout);
    while (true) {
      std::unique_lock lock(mutex_);
      if (in_flight_ == 0) break;
      const auto until = std::min(wait_until, Clock::now() + std::chrono::seconds(5));
      changed_.wait_until(lock, until, [&] { return in_flight_ == 0; });
      if (in_flight_ == 0 || Clock::now() >= wait_until) break;
      lock.unlock();
      Progress();
    }
    const courier::ClientCounters counters = client->counters();
    {
      std::lock_guard lock(mutex_);
      finished_ = true;
      std::vector<std::uint64_t> open;
      for (const auto& [n, record] : pending_) open.push_back(n);
      std::sort(open.begin(), open.end());
      for (const std::uint64_t n : open) Fail(n, "unanswered", "no answer by the end of the wait");
    }
    client.reset();  // fails anything still pending with cancelled; counted as late answers
    return Summary(number, counters, Clock::now() - started);
  }

 private:
  std::size_t in_flight() {
    std::lock_guard lock(mutex_);
    return in_flight_;
  }

  void SubmitOne(courier::Client& client, std::uint64_t n, std::mt19937_64& random) {
    std::string nonce(16, '\0');
    for (char& c : nonce) c = static_cast<char>(random() & 0xff);
    std::string pad(static_cast<std::size_t>(random() % (options_.pad_max + 1)), '\0');
    for (char& c : pad) c = static_cast<char>('a' + random() % 26);
    courier::Value request = courier::Value::Object(
        {{"n", static_cast<std::uint64_t>(n)}, {"nonce", courier::Binary{nonce}}, {"pad", pad}});
    {
      std::lock_guard lock(mutex_);
      pending_[n] = JobRecord{nonce, pad};
      answers_.push_back(0);
      ++in_flight_;
      ++sent_;
    }
    client.Submit("echo", std::move(request), [this, n](courier::Result result) { OnAnswer(n, std::move(result)); });
  }

  void OnAnswer(std::uint64_t n, courier::Result result) {
    std::lock_guard lock(mutex_);
    if (finished_) {
      ++late_answers_;
      return;
    }
    if (n >= answers_.size()) {
      Fail(n, "unknown_job", "an answer for a number never submitted");
      return;
    }
    if (answers_[n] < 255) ++answers_[n];
    if (answers_[n] > 1) {
      Fail(n, "duplicate_answer", "answered " + std::to_string(answers_[n]) + " times");
      return;
    }
    const auto it = pending_.find(n);
    const JobRecord record = std::move(it->second);
    pending_.erase(it);
    --in_flight_;
    changed_.notify_all();
    if (const courier::Error* error = result.error()) {
      Fail(n, std::string(courier::ToString(error->code())), OneLine(error->what()));
      return;
    }
    const std::string problem = CheckReply(n, record, result.value());
    if (!problem.empty()) {
      Fail(n, "wrong_content", problem);
      return;
    }
    ++ok_;
    latencies_us_.push_back(static_cast<double>(result.elapsed().count()));
  }

  // Returns: what is wrong with the echoed reply, or "" when it is the request.
  static std::string CheckReply(std::uint64_t n, const JobRecord& record, const courier::Value& reply) {
    try {
      if (!reply.IsMap()) return "reply is not a map";
      if (reply.size() != 3) return "reply has " + std::to_string(reply.size()) + " keys, not 3";
      const std::uint64_t got = reply.At("n").AsUint();
      if (got != n) return "reply carries number " + std::to_string(got);
      if (reply.At("nonce").AsBinary().bytes != record.nonce) return "reply carries another nonce";
      if (reply.At("pad").AsString() != record.pad) return "reply carries another pad";
    } catch (const std::exception& error) {
      return std::string("reply does not decode as the request: ") + error.what();
    }
    return "";
  }

  // Records a failure. Caller holds mutex_.
  void Fail(std::uint64_t n, const std::string& code, const std::string& detail) {
    ++failed_by_code_[code];
    ++failures_;
    std::string line = Now() + " FAIL job " + std::to_string(n) + ": " + code + ": " + detail;
    if (failures_ <= options_.print_failures) {
      std::printf("%s\n", line.c_str());
      std::fflush(stdout);
    } else if (failures_ == options_.print_failures + 1) {
      std::printf("%s soak-client: more failures are not printed (see the failures file)\n", Now().c_str());
    }
    failure_lines_.push_back(std::move(line));
  }

  void Progress() {
    std::lock_guard lock(mutex_);
    std::printf("%s progress: sent %llu, ok %llu, failed %llu, in flight %zu\n", Now().c_str(),
                static_cast<unsigned long long>(sent_), static_cast<unsigned long long>(ok_),
                static_cast<unsigned long long>(failures_), in_flight_);
    std::fflush(stdout);
  }

  int Summary(std::uint64_t sent, const courier::ClientCounters& counters, Clock::duration elapsed) {
    std::lock_guard lock(mutex_);
    std::sort(latencies_us_.begin(), latencies_us_.end());
    const auto pct = [&](double p) {
      if (latencies_us_.empty()) return 0.0;
      const auto index = std::min(latencies_us_.size() - 1, static_cast<std::size_t>(p * latencies_us_.size()));
      return latencies_us_[index] / 1000.0;
    };
    std::string chaos = "(no chaos file)";
    if (!options_.chaos_file.empty()) {
      std::ifstream in(options_.chaos_file);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
      chaos = text.empty() ? "(chaos file missing or empty)" : text;
    }
    std::string by_code;
    for (const auto& [code, count] : failed_by_code_) {
      by_code += (by_code.empty() ? "" : ", ") + code + " " + std::to_string(count);
    }
    if (!options_.failures_file.empty()) {
      std::ofstream out(options_.failures_file);
      for (const auto& line : failure_lines_) out << line << '\n';
    }
    std::printf(
        "==== soak summary (%.0f s)\n"
        "jobs sent:  %llu\n"
        "ok:         %llu\n"
        "failures:   %llu%s%s%s\n"
        "latency ok: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n"
        "client:     retries %llu, failovers %llu, broker downs %llu (at once on disconnect %llu), "
        "broker restarts seen %llu, duplicates dropped %llu, deadline expired %llu, late answers %llu\n"
        "chaos:      %s\n"
        "result:     %s\n",
        std::chrono::duration<double>(elapsed).count(), static_cast<unsigned long long>(sent),
        static_cast<unsigned long long>(ok_), static_cast<unsigned long long>(failures_),
        by_code.empty() ? "" : " (", by_code.c_str(), by_code.empty() ? "" : ")", pct(0.5), pct(0.99),
        latencies_us_.empty() ? 0.0 : latencies_us_.back() / 1000.0,
        static_cast<unsigned long long>(counters.retries), static_cast<unsigned long long>(counters.failovers),
        static_cast<unsigned long long>(counters.broker_downs),
        static_cast<unsigned long long>(counters.disconnects),
        static_cast<unsigned long long>(counters.broker_restarts),
        static_cast<unsigned long long>(counters.duplicates_dropped),
        static_cast<unsigned long long>(counters.deadline_expired),
        static_cast<unsigned long long>(late_answers_), chaos.c_str(),
        failures_ == 0 && ok_ == sent && sent > 0 ? "PASS" : "FAIL");
    std::fflush(stdout);
    return failures_ == 0 && ok_ == sent && sent > 0 ? 0 : 1;
  }

  const Options options_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::unordered_map<std::uint64_t, JobRecord> pending_;  // submitted, not yet answered
  std::vector<std::uint8_t> answers_;                      // answers so far, by job number
  std::size_t in_flight_ = 0;
  std::uint64_t sent_ = 0;
  std::uint64_t ok_ = 0;
  std::uint64_t failures_ = 0;
  std::uint64_t late_answers_ = 0;
  bool finished_ = false;
  std::map<std::string, std::uint64_t> failed_by_code_;
  std::vector<std::string> failure_lines_;
  std::vector<double> latencies_us_;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"courier-soak-client: the checked client stream of ops/soak"};
  app.add_option("--broker", options.brokers, "broker endpoint (repeatable)")->required();
  app.add_option("--duration", options.duration_s, "seconds to keep submitting (default 60)")
      ->check(CLI::PositiveNumber);
  app.add_option("--concurrency", options.concurrency, "jobs in flight at once (default 32)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--deadline-ms", options.deadline_ms, "each job's deadline (default 60000)")
      ->check(CLI::Range(1000, 3600000));
  app.add_option("--max-attempts", options.max_attempts, "broker deliveries per job (default 100)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--max-retries", options.max_retries, "client resends of retryable errors (default 100)")
      ->check(CLI::Range(0, 1000));
  app.add_option("--pad-max", options.pad_max, "largest random pad string in a payload (default 256)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--rate", options.rate, "jobs per second at most, 0 for no limit (default 1000)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--chaos-file", options.chaos_file, "ops/soak's chaos summary, read at the end");
  app.add_option("--failures-file", options.failures_file, "every failure line is written here");
  app.add_option("--print-failures", options.print_failures, "failure lines printed (default 200)");
  CLI11_PARSE(app, argc, argv);
  try {
    Soak soak(std::move(options));
    return soak.Run();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "soak-client: %s\n", error.what());
    return 2;
  }
}
