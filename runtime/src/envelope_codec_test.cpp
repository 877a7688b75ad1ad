#include "envelope_codec.hpp"

#include <gtest/gtest.h>

#include "courier/error.hpp"

namespace courier::detail {
namespace {

Envelope SampleEnvelope() {
  Envelope envelope;
  envelope.attempt = 2;
  for (std::uint8_t i = 0; i < 16; ++i) envelope.job_id.bytes[i] = i;
  envelope.service = "echo";
  envelope.created_at_ms = 1764300000000;
  envelope.deadline_ms = 1764300030000;
  envelope.max_attempts = 5;
  envelope.priority = 3;
  envelope.trace_id[0] = 0xab;
  envelope.key_id = 7;
  envelope.nonce.fill(0x11);
  envelope.mode = ReplyMode::kSend;
  return envelope;
}

void ExpectBadRequest(std::string_view bytes, std::string_view fragment) {
  try {
    DecodeEnvelope(bytes);
    FAIL() << "decoded an invalid envelope; expected: " << fragment;
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kBadRequest);
    EXPECT_NE(std::string(error.what()).find(fragment), std::string::npos) << error.what();
  }
}

TEST(EnvelopeCodecTest, RoundTripsEveryField) {
  const Envelope original = SampleEnvelope();
  const std::string bytes = EncodeEnvelope(original);
  const Envelope decoded = DecodeEnvelope(bytes).ToEnvelope();
  EXPECT_EQ(decoded.version, 1u);
  EXPECT_EQ(decoded.attempt, original.attempt);
  EXPECT_EQ(decoded.job_id, original.job_id);
  EXPECT_EQ(decoded.service, original.service);
  EXPECT_EQ(decoded.created_at_ms, original.created_at_ms);
  EXPECT_EQ(decoded.deadline_ms, original.deadline_ms);
  EXPECT_EQ(decoded.max_attempts, original.max_attempts);
  EXPECT_EQ(decoded.priority, original.priority);
  EXPECT_EQ(decoded.trace_id, original.trace_id);
  EXPECT_EQ(decoded.key_id, original.key_id);
  EXPECT_EQ(decoded.nonce, original.nonce);
  EXPECT_EQ(decoded.mode, original.mode);
}

TEST(EnvelopeCodecTest, LayoutKeepsAttemptAtItsFixedOffset) {
  const std::string bytes = EncodeEnvelope(SampleEnvelope());
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[0]), 0x9c);  // fixarray of 12
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[1]), 0x01);  // version
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[2]), 0xce);  // uint32 tag
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[kAttemptOffset + 3]), 2);
}

TEST(EnvelopeCodecTest, PatchAttemptRewritesInPlaceAndLeavesAssociatedDataAlone) {
  std::string bytes = EncodeEnvelope(SampleEnvelope());
  char before[kMaxEnvelopeBytes];
  const std::string aad_before(AssociatedData(bytes, before));
  PatchAttempt(bytes.data(), bytes.size(), 70000);
  EXPECT_EQ(DecodeEnvelope(bytes).attempt, 70000u);
  char after[kMaxEnvelopeBytes];
  EXPECT_EQ(std::string(AssociatedData(bytes, after)), aad_before);
}

TEST(EnvelopeCodecTest, UnsealedEnvelopeHasEmptyNonce) {
  Envelope envelope = SampleEnvelope();
  envelope.key_id = kUnsealedKeyId;
  const EnvelopeView view = DecodeEnvelope(EncodeEnvelope(envelope));
  EXPECT_EQ(view.key_id, kUnsealedKeyId);
}

TEST(EnvelopeCodecTest, ReservedTrailingFieldsAreSkipped) {
  std::string bytes = EncodeEnvelope(SampleEnvelope());
  bytes[0] = static_cast<char>(0x9e);  // 14 fields
  bytes += '\x07';                     // reserved: positive fixint
  bytes += "\xa2hi";                   // reserved: str
  EXPECT_EQ(DecodeEnvelope(bytes).service, "echo");
}

TEST(EnvelopeCodecTest, RejectsTruncatedEnvelopesAtEveryLength) {
  const std::string bytes = EncodeEnvelope(SampleEnvelope());
  for (std::size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_THROW(DecodeEnvelope(std::string_view(bytes).substr(0, length)), Error) << length;
  }
}

TEST(EnvelopeCodecTest, RejectsEachKindOfDamage) {
  const std::string good = EncodeEnvelope(SampleEnvelope());
  ExpectBadRequest(good + "x", "trailing bytes");
  ExpectBadRequest(std::string(600, '\x9c'), "larger than");
  std::string not_array = good;
  not_array[0] = '\x8c';
  ExpectBadRequest(not_array, "fixarray");
  std::string few_fields = good;
  few_fields[0] = '\x9b';
  ExpectBadRequest(few_fields, "expected 12 to 15 fields");
  std::string version = good;
  version[1] = '\x02';
  ExpectBadRequest(version, "unsupported version 2");
  std::string attempt_form = good;
  attempt_form[2] = '\xcd';
  ExpectBadRequest(attempt_form, "attempt must be a uint32");
  std::string job_id_type = good;
  job_id_type[7] = '\xa0' + 16;  // str instead of bin for the job id
  job_id_type.erase(8, 1);
  ExpectBadRequest(job_id_type, "expected binary data");
  Envelope zero_deadline = SampleEnvelope();
  zero_deadline.deadline_ms = 0;
  EXPECT_THROW(EncodeEnvelope(zero_deadline), Error);
  Envelope long_name = SampleEnvelope();
  long_name.service.assign(256, 'a');
  EXPECT_THROW(EncodeEnvelope(long_name), Error);
  long_name.service.clear();
  EXPECT_THROW(EncodeEnvelope(long_name), Error);
}

TEST(EnvelopeCodecTest, RejectsNonceThatDisagreesWithKeyId) {
  Envelope envelope = SampleEnvelope();
  envelope.key_id = kUnsealedKeyId;
  std::string bytes = EncodeEnvelope(envelope);
  // key_id 0 followed by an empty nonce: turn key id 0 into 1 to make the nonce wrong.
  const auto pos = bytes.rfind(std::string("\x00\xc4\x00", 3));
  ASSERT_NE(pos, std::string::npos);
  bytes[pos] = '\x01';
  ExpectBadRequest(bytes, "nonce must be 24 bytes");
}

TEST(EnvelopeCodecTest, RejectsUnknownReplyMode) {
  std::string bytes = EncodeEnvelope(SampleEnvelope());
  bytes.back() = '\x04';
  ExpectBadRequest(bytes, "unknown reply mode 4");
}

TEST(EnvelopeCodecTest, EnqueueModeRoundTrips) {
  Envelope envelope = SampleEnvelope();
  envelope.mode = ReplyMode::kEnqueue;
  const std::string bytes = EncodeEnvelope(envelope);
  EXPECT_EQ(static_cast<unsigned char>(bytes.back()), 0x03);
  EXPECT_EQ(DecodeEnvelope(bytes).mode, ReplyMode::kEnqueue);
}

}  // namespace
}  // namespace courier::detail
