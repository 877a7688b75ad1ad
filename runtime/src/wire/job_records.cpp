#include "wire/job_records.hpp"

#include <msgpack.hpp>

#include <algorithm>
#include <array>

#include "courier/codec.hpp"
#include "msgpack_reader.hpp"

namespace courier::wire {
namespace {

constexpr std::array<std::string_view, 5> kStateNames{"queued", "running", "done", "failed", "dead"};

// Wire shapes: the map keys are the member names (PROTOCOL.md §9.1). Binary fields are
// vector<char> so msgpack-c packs them as bin.
using Bytes = std::vector<char>;

Bytes ToBytes(std::string_view text) { return Bytes(text.begin(), text.end()); }
std::string ToString(const Bytes& bytes) { return std::string(bytes.begin(), bytes.end()); }

JobId ToJobId(const Bytes& bytes, std::string_view what) {
  const auto id = JobId::FromBytes(std::string_view(bytes.data(), bytes.size()));
  if (!id) throw Error(ErrorCode::kBadRequest, std::string(what) + ": a job id is 16 bytes");
  return *id;
}

struct JobArgs {
  Bytes id;
  std::uint64_t wait_ms = 0;
  MSGPACK_DEFINE_MAP(id, wait_ms);
};

struct JobsArgs {
  std::string service;
  std::string state;
  std::uint32_t limit = 100;
  std::uint64_t after = 0;
  MSGPACK_DEFINE_MAP(service, state, limit, after);
};

struct RecordMap {
  Bytes id;
  std::string service;
  std::string state;
  std::uint32_t attempt = 1;
  std::uint32_t max_attempts = 1;
  std::string worker;
  std::uint64_t since_ms = 0;
  std::uint32_t code = 0;
  std::string message;
  std::uint64_t expires_ms = 0;
  bool durable = true;
  std::vector<Bytes> reply;
  MSGPACK_DEFINE_MAP(id, service, state, attempt, max_attempts, worker, since_ms, code, message, expires_ms,
                     durable, reply);
};

struct PageMap {
  std::vector<RecordMap> rows;
  std::uint64_t next = 0;
  MSGPACK_DEFINE_MAP(rows, next);
};

// Limits for what a peer sends: a page of kMaxJobsPage records, each reply at most a
// broker's maximum message.
constexpr DecodeLimits kLimits{.max_bytes = 64 * 1024 * 1024,
                               .max_array = kMaxJobsPage + 16,
                               .max_map = 64,
                               .max_str = 16 * 1024 * 1024,
                               .max_bin = 16 * 1024 * 1024,
                               .max_ext = 0,
                               .max_depth = 8};

template <typename T>
T DecodeAs(std::string_view bytes, std::string_view what) {
  try {
    return Decode<T>(bytes, kLimits);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& error) {
    throw Error(ErrorCode::kBadRequest, std::string(what) + ": " + error.what());
  }
}

// Returns: the raw args element of a QUERY body [name, args] named `name`.
std::string_view QueryArgs(std::string_view body, std::string_view name) {
  detail::MsgpackReader reader(body);
  const std::uint32_t count = reader.ReadArrayHeader("query");
  if (count < 2) throw Error(ErrorCode::kBadRequest, "query '" + std::string(name) + "' needs arguments");
  if (reader.ReadStr("query.name") != name) throw Error(ErrorCode::kBadRequest, "not a '" + std::string(name) + "' query");
  const std::size_t begin = reader.offset();
  reader.Skip("query.args");
  return body.substr(begin, reader.offset() - begin);
}

template <typename Args>
std::string EncodeQueryBody(std::string_view name, const Args& args) {
  std::string out;
  detail::StringWriter stream(out);
  msgpack::packer<detail::StringWriter> packer(stream);
  packer.pack_array(2);
  packer.pack_str(static_cast<std::uint32_t>(name.size()));
  packer.pack_str_body(name.data(), static_cast<std::uint32_t>(name.size()));
  packer.pack(args);
  return out;
}

RecordMap ToMap(const JobRecord& record) {
  RecordMap map;
  map.id = ToBytes(record.id.View());
  map.service = record.service;
  map.state = std::string(ToString(record.state));
  map.attempt = record.attempt;
  map.max_attempts = record.max_attempts;
  map.worker = record.worker;
  map.since_ms = record.since_ms;
  const bool finished_badly = record.state == JobState::kFailed || record.state == JobState::kDead;
  map.code = finished_badly ? static_cast<std::uint32_t>(record.code) : 0;
  map.message = record.message;
  map.expires_ms = record.expires_ms;
  map.durable = record.durable;
  for (const auto& frame : record.reply) map.reply.push_back(ToBytes(frame));
  return map;
}

JobRecord FromMap(const RecordMap& map) {
  JobRecord record;
  record.id = ToJobId(map.id, "job record");
  record.service = map.service;
  const auto state = ParseJobState(map.state);
  if (!state) throw Error(ErrorCode::kBadRequest, "job record: unknown state '" + map.state + "'");
  record.state = *state;
  record.attempt = map.attempt;
  record.max_attempts = map.max_attempts;
  record.worker = map.worker;
  record.since_ms = map.since_ms;
  record.code = IsWireCode(map.code) ? static_cast<ErrorCode>(map.code) : ErrorCode::kInternal;
  record.message = map.message;
  record.expires_ms = map.expires_ms;
  record.durable = map.durable;
  for (const auto& frame : map.reply) record.reply.push_back(ToString(frame));
  return record;
}

}  // namespace

std::string_view ToString(JobState state) noexcept { return kStateNames[static_cast<std::size_t>(state)]; }

std::optional<JobState> ParseJobState(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kStateNames.size(); ++i) {
    if (kStateNames[i] == name) return static_cast<JobState>(i);
  }
  return std::nullopt;
}

std::string EncodeQuery(const JobQuery& query) {
  return EncodeQueryBody(kJobQueryName, JobArgs{.id = ToBytes(query.id.View()), .wait_ms = query.wait_ms});
}

std::string EncodeQuery(const JobsQuery& query) {
  return EncodeQueryBody(kJobsQueryName, JobsArgs{.service = query.service,
                                                  .state = query.state ? std::string(ToString(*query.state)) : "",
                                                  .limit = query.limit,
                                                  .after = query.after});
}

JobQuery DecodeJobQuery(std::string_view body) {
  const auto args = DecodeAs<JobArgs>(QueryArgs(body, kJobQueryName), "job query");
  return JobQuery{.id = ToJobId(args.id, "job query"), .wait_ms = std::min(args.wait_ms, kMaxJobWaitMs)};
}

JobsQuery DecodeJobsQuery(std::string_view body) {
  const auto args = DecodeAs<JobsArgs>(QueryArgs(body, kJobsQueryName), "jobs query");
  JobsQuery query;
  query.service = args.service;
  if (!args.state.empty()) {
    query.state = ParseJobState(args.state);
    if (!query.state) throw Error(ErrorCode::kBadRequest, "jobs query: unknown state '" + args.state + "'");
  }
  query.limit = std::clamp<std::uint32_t>(args.limit, 1, kMaxJobsPage);
  query.after = args.after;
  return query;
}

std::string EncodeJobRecord(const JobRecord& record) { return Encode(ToMap(record)); }

JobRecord DecodeJobRecord(std::string_view bytes) { return FromMap(DecodeAs<RecordMap>(bytes, "job record")); }

std::string EncodeJobsPage(const JobsPage& page) {
  PageMap map;
  map.next = page.next;
  for (const auto& row : page.rows) map.rows.push_back(ToMap(row));
  return Encode(map);
}

JobsPage DecodeJobsPage(std::string_view bytes) {
  const auto map = DecodeAs<PageMap>(bytes, "jobs page");
  JobsPage page;
  page.next = map.next;
  for (const auto& row : map.rows) page.rows.push_back(FromMap(row));
  return page;
}

std::string EncodeQueryReply(std::string_view result) {
  std::string out("\x92\x00", 2);
  out.append(result);
  return out;
}

std::string_view QueryResult(std::string_view reply_body) {
  detail::MsgpackReader reader(reply_body);
  if (reader.ReadArrayHeader("query reply") < 2) throw Error(ErrorCode::kBadRequest, "query reply: expected [status, result]");
  const std::uint64_t status = reader.ReadUint("query reply.status");
  if (status != 0) {
    const std::string message(reader.ReadStr("query reply.message"));
    const ErrorCode code = status <= UINT32_MAX && IsWireCode(static_cast<std::uint32_t>(status))
                               ? static_cast<ErrorCode>(status)
                               : ErrorCode::kInternal;
    throw Error(code, message);
  }
  const std::size_t begin = reader.offset();
  reader.Skip("query reply.result");
  return reply_body.substr(begin, reader.offset() - begin);
}

}  // namespace courier::wire
