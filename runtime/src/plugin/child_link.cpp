#include "child_link.hpp"

#include <cstring>

#include "courier/error.hpp"
#include "envelope_codec.hpp"

namespace courier::detail {
namespace {

constexpr std::size_t kPrefix = sizeof(std::uint32_t);

class Writer {
 public:
  explicit Writer(ChildFrame kind) {
    out_.resize(kPrefix);
    Put(static_cast<std::uint8_t>(kind));
  }
  template <typename T>
  void Put(T value) {
    out_.append(reinterpret_cast<const char*>(&value), sizeof value);
  }
  void PutString(std::string_view text) {
    Put(static_cast<std::uint32_t>(text.size()));
    out_.append(text);
  }
  std::string Finish() {
    const auto length = static_cast<std::uint32_t>(out_.size() - kPrefix);
    std::memcpy(out_.data(), &length, kPrefix);
    return std::move(out_);
  }

 private:
  std::string out_;
};

class Reader {
 public:
  Reader(std::string_view frame, ChildFrame kind) : rest_(frame.substr(std::min(frame.size(), kPrefix))) {
    if (Get<std::uint8_t>() != static_cast<std::uint8_t>(kind)) Fail();
  }
  template <typename T>
  T Get() {
    if (rest_.size() < sizeof(T)) Fail();
    T value;
    std::memcpy(&value, rest_.data(), sizeof value);
    rest_.remove_prefix(sizeof value);
    return value;
  }
  std::string_view GetString() {
    const auto size = Get<std::uint32_t>();
    if (rest_.size() < size) Fail();
    const std::string_view text = rest_.substr(0, size);
    rest_.remove_prefix(size);
    return text;
  }
  void ExpectEnd() const {
    if (!rest_.empty()) Fail();
  }
  [[noreturn]] static void Fail() { throw Error(ErrorCode::kInternal, "malformed frame on a handler child's link"); }

 private:
  std::string_view rest_;
};

}  // namespace

std::string EncodeChildJob(const JobInput& job) {
  Writer writer(ChildFrame::kJob);
  writer.Put(job.seq);
  writer.Put(static_cast<std::uint32_t>(job.service));
  writer.PutString(job.envelope_bytes);
  writer.PutString(job.broker);
  writer.PutString(job.sender);
  writer.PutString(job.Payload());
  return writer.Finish();
}

JobInput DecodeChildJob(std::string_view frame) {
  Reader reader(frame, ChildFrame::kJob);
  JobInput job;
  job.seq = reader.Get<std::uint64_t>();
  job.service = reader.Get<std::uint32_t>();
  job.envelope_bytes = std::string(reader.GetString());
  job.broker = std::string(reader.GetString());
  job.sender = std::string(reader.GetString());
  job.payload = std::string(reader.GetString());
  reader.ExpectEnd();
  job.envelope = DecodeEnvelope(job.envelope_bytes).ToEnvelope();  // the host decoded it already
  return job;
}

std::string EncodeChildDone(const ChildDone& done) {
  Writer writer(ChildFrame::kDone);
  writer.Put(done.seq);
  writer.Put(static_cast<std::uint32_t>(done.outputs.size()));
  for (const JobOutput& output : done.outputs) {
    writer.Put(output.seq);
    writer.Put(static_cast<std::uint8_t>(output.command));
    writer.PutString(output.body1);
    writer.PutString(output.body2);
  }
  writer.Put(static_cast<std::uint32_t>(done.samples.size()));
  for (const StageSample& sample : done.samples) {
    writer.Put(sample.service);
    writer.Put(static_cast<std::uint8_t>(sample.stage));
    writer.Put(static_cast<std::uint8_t>(sample.error ? 1 : 0));
    writer.Put(sample.ns);
  }
  writer.Put(static_cast<std::uint32_t>(done.records.size()));
  for (const ErrorRecord& record : done.records) {
    writer.PutString(record.job_id.View());
    writer.PutString(record.service);
    writer.PutString(record.broker);
    writer.PutString(record.sender);
    writer.Put(record.attempt);
    writer.PutString(std::string_view(reinterpret_cast<const char*>(record.trace_id.data()), record.trace_id.size()));
    writer.Put(static_cast<std::uint8_t>(record.stage));
    writer.Put(static_cast<std::uint16_t>(record.code));
    writer.PutString(record.message);
    writer.Put(record.at_ms);
  }
  return writer.Finish();
}

ChildDone DecodeChildDone(std::string_view frame) {
  Reader reader(frame, ChildFrame::kDone);
  ChildDone done;
  done.seq = reader.Get<std::uint64_t>();
  const auto outputs = reader.Get<std::uint32_t>();
  for (std::uint32_t i = 0; i < outputs; ++i) {
    JobOutput output;
    output.seq = reader.Get<std::uint64_t>();
    output.command = static_cast<WorkerCommand>(reader.Get<std::uint8_t>());
    output.body1 = std::string(reader.GetString());
    output.body2 = std::string(reader.GetString());
    done.outputs.push_back(std::move(output));
  }
  const auto samples = reader.Get<std::uint32_t>();
  for (std::uint32_t i = 0; i < samples; ++i) {
    StageSample sample;
    sample.service = reader.Get<std::uint32_t>();
    const auto stage = reader.Get<std::uint8_t>();
    if (stage >= kStageCount) Reader::Fail();
    sample.stage = static_cast<Stage>(stage);
    sample.error = reader.Get<std::uint8_t>() != 0;
    sample.ns = reader.Get<std::uint64_t>();
    done.samples.push_back(sample);
  }
  const auto records = reader.Get<std::uint32_t>();
  for (std::uint32_t i = 0; i < records; ++i) {
    ErrorRecord record;
    const auto id = JobId::FromBytes(reader.GetString());
    if (!id) Reader::Fail();
    record.job_id = *id;
    record.service = std::string(reader.GetString());
    record.broker = std::string(reader.GetString());
    record.sender = std::string(reader.GetString());
    record.attempt = reader.Get<std::uint32_t>();
    const std::string_view trace = reader.GetString();
    if (trace.size() != record.trace_id.size()) Reader::Fail();
    std::memcpy(record.trace_id.data(), trace.data(), trace.size());
    const auto stage = reader.Get<std::uint8_t>();
    if (stage >= kStageCount) Reader::Fail();
    record.stage = static_cast<Stage>(stage);
    record.code = static_cast<ErrorCode>(reader.Get<std::uint16_t>());
    record.message = std::string(reader.GetString());
    record.at_ms = reader.Get<std::uint64_t>();
    done.records.push_back(std::move(record));
  }
  reader.ExpectEnd();
  return done;
}

std::optional<std::size_t> CompleteChildFrame(std::string_view buffer, std::size_t max_frame) {
  if (buffer.size() < kPrefix) return std::nullopt;
  std::uint32_t length = 0;
  std::memcpy(&length, buffer.data(), kPrefix);
  if (length > max_frame) Reader::Fail();
  if (buffer.size() < kPrefix + length) return std::nullopt;
  return kPrefix + length;
}

}  // namespace courier::detail
