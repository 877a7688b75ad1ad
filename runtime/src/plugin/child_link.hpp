// child_link.hpp — what a worker host and its handler child processes say to each other
// over their socketpair (isolation = "process"). Both ends are the same build, so the
// encoding is plain: a frame is [length: u32][kind: u8][body], integers in native order,
// strings as [u32 length][bytes].
//   host → child  JOB   one job: seq, service index, envelope bytes, broker, sender, payload
//   child → host  DONE  its outputs (REPLY/ERROR/REJECT frames), the stage samples and the
//                       error records the run produced, for the host to send, record, report
// Decoders throw Error(kInternal) on a frame that does not parse: a child that sends one
// is broken and is replaced.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "error_reporter.hpp"
#include "job_runner.hpp"
#include "stage_stats.hpp"

namespace courier::detail {

enum class ChildFrame : std::uint8_t { kJob = 'J', kDone = 'D' };

struct ChildDone {
  std::uint64_t seq = 0;  // the job's
  std::vector<JobOutput> outputs;
  std::vector<StageSample> samples;
  std::vector<ErrorRecord> records;
};

// Returns: the whole frame (length prefix included), ready to write.
std::string EncodeChildJob(const JobInput& job);
std::string EncodeChildDone(const ChildDone& done);

// Returns: the size of the first complete frame in `buffer` (prefix included), or nullopt
// if more bytes are needed. Throws: Error(kInternal) if its length exceeds `max_frame`.
std::optional<std::size_t> CompleteChildFrame(std::string_view buffer, std::size_t max_frame);
// Decode one complete frame as returned by CompleteChildFrame.
JobInput DecodeChildJob(std::string_view frame);
ChildDone DecodeChildDone(std::string_view frame);

}  // namespace courier::detail
