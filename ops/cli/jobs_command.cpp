#include "jobs_command.hpp"

#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "cli_support.hpp"
#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/value.hpp"
#include "job_format.hpp"

namespace courier::cli {
namespace {

struct JobFlags {
  std::string id;
  std::string wait;
  bool json = false;
};

struct JobsFlags {
  std::string service;
  std::string state;
  std::size_t limit = 100;
  bool json = false;
};

int RunJob(const ClientOptions& options, const JobFlags& flags) {
  const std::optional<JobId> id = JobId::FromHex(flags.id);
  if (!id) {
    std::cerr << "courier: a job id is 32 hex digits (as `courier send --enqueue` prints it), not '" << flags.id
              << "'\n";
    return kExitUsage;
  }
  std::chrono::milliseconds wait{0};
  try {
    if (!flags.wait.empty()) wait = ParseWait(flags.wait);
  } catch (const std::invalid_argument& error) {
    std::cerr << "courier: --wait: " << error.what() << "\n";
    return kExitUsage;
  }
  Client client(options);
  const JobStatus status = client.Job(*id, wait);
  if (flags.json) {
    std::cout << ToJson(JobStatusJson(status)) << "\n";
  } else {
    std::cout << JobStatusText(status, NowUnixMs());
  }
  return JobExitCode(status);
}

int RunJobs(const ClientOptions& options, const JobsFlags& flags) {
  JobsFilter filter;
  filter.service = flags.service;
  if (!flags.state.empty()) filter.state = ParseJobState(flags.state);  // checked by the parser
  filter.limit = flags.limit;
  Client client(options);
  const std::vector<JobStatus> jobs = client.Jobs(filter);
  if (flags.json) {
    Value::Array rows;
    rows.reserve(jobs.size());
    for (const JobStatus& job : jobs) rows.push_back(JobStatusJson(job));
    std::cout << ToJson(Value(std::move(rows))) << "\n";
    return kExitOk;
  }
  const std::uint64_t now = NowUnixMs();
  std::vector<std::vector<std::string>> rows;
  rows.reserve(jobs.size());
  for (const JobStatus& job : jobs) rows.push_back(JobsTableRow(job, now));
  std::cout << RenderTable(JobsTableHeader(), rows);
  return kExitOk;
}

}  // namespace

CommandRunner AddJobsCommands(CLI::App& app, std::function<ClientOptions()> client_options) {
  auto job_flags = std::make_shared<JobFlags>();
  CLI::App* job = app.add_subcommand("job", "show a stored job (courier send --enqueue) and its result");
  job->add_option("id", job_flags->id, "job id, 32 hex digits")->required();
  job->add_option("--wait,-w", job_flags->wait,
                  "wait for the job to finish, up to this long: seconds (5, 1.5) or a duration (500ms, 2m)");
  job->add_flag("--json", job_flags->json, "print one JSON object");

  auto jobs_flags = std::make_shared<JobsFlags>();
  CLI::App* jobs = app.add_subcommand("jobs", "list the stored jobs and kept results of every broker");
  jobs->add_option("--service,-s", jobs_flags->service, "only this service");
  jobs->add_option("--state", jobs_flags->state, "only jobs in this state")
      ->check(CLI::IsMember({"queued", "running", "done", "failed", "dead"}));
  jobs->add_option("--limit,-n", jobs_flags->limit, "rows at most, over all brokers (default 100)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}));
  jobs->add_flag("--json", jobs_flags->json, "print a JSON array");

  return [=]() -> std::optional<int> {
    if (job->parsed()) return RunJob(client_options(), *job_flags);
    if (jobs->parsed()) return RunJobs(client_options(), *jobs_flags);
    return std::nullopt;
  };
}

}  // namespace courier::cli
