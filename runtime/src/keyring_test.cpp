#include "courier/keyring.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "courier/error.hpp"
#include "envelope_codec.hpp"
#include "private_file.hpp"

namespace courier {
namespace {

namespace fs = std::filesystem;

Envelope MakeEnvelope() {
  Envelope envelope;
  envelope.job_id = JobId::Random();
  envelope.service = "hash";
  envelope.created_at_ms = NowUnixMs();
  envelope.deadline_ms = envelope.created_at_ms + 30000;
  return envelope;
}

ErrorCode OpenFailure(const Keyring& keyring, std::string_view envelope, std::string_view payload) {
  try {
    keyring.Open(envelope, payload);
  } catch (const Error& error) {
    return error.code();
  }
  ADD_FAILURE() << "opened a payload that should have been refused";
  return ErrorCode::kInternal;
}

class TempDir {
 public:
  TempDir() : path_(fs::temp_directory_path() / ("courier-keyring-" + JobId::Random().Hex())) {
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(KeyringTest, SealThenOpenRoundTrips) {
  const Keyring keyring = Keyring::Generate();
  const auto sealed = keyring.Seal(MakeEnvelope(), "hello, courier");
  EXPECT_EQ(detail::DecodeEnvelope(sealed.envelope).key_id, keyring.active_key_id());
  EXPECT_EQ(keyring.Open(sealed.envelope, sealed.payload), "hello, courier");
}

TEST(KeyringTest, EverySealUsesAFreshNonce) {
  const Keyring keyring = Keyring::Generate();
  const auto a = keyring.Seal(MakeEnvelope(), "same");
  const auto b = keyring.Seal(MakeEnvelope(), "same");
  EXPECT_NE(detail::DecodeEnvelope(a.envelope).nonce, detail::DecodeEnvelope(b.envelope).nonce);
  EXPECT_NE(a.payload, b.payload);
}

TEST(KeyringTest, FlippedBitAnywhereIsRejected) {
  const Keyring keyring = Keyring::Generate();
  const auto sealed = keyring.Seal(MakeEnvelope(), "payload bytes");
  for (std::size_t i = 0; i < sealed.payload.size(); ++i) {
    std::string damaged = sealed.payload;
    damaged[i] ^= 0x01;
    EXPECT_EQ(OpenFailure(keyring, sealed.envelope, damaged), ErrorCode::kUnauthenticated) << i;
  }
  const auto nonce_offset = sealed.envelope.size() - 1 - 24;  // the nonce precedes the mode byte
  for (std::size_t i = 0; i < sealed.envelope.size(); ++i) {
    if (i >= detail::kAttemptOffset && i < detail::kAttemptOffset + 4) continue;
    std::string damaged = sealed.envelope;
    damaged[i] ^= 0x01;
    try {
      keyring.Open(damaged, sealed.payload);
      ADD_FAILURE() << "a flipped envelope bit at " << i << " was accepted";
    } catch (const Error& error) {
      // A flip either breaks the envelope's structure or its authentication.
      EXPECT_TRUE(error.code() == ErrorCode::kUnauthenticated || error.code() == ErrorCode::kBadRequest ||
                  error.code() == ErrorCode::kUnknownKey)
          << i;
      if (i >= nonce_offset && i < nonce_offset + 24) {
        EXPECT_EQ(error.code(), ErrorCode::kUnauthenticated);
      }
    }
  }
}

TEST(KeyringTest, AttemptRewriteKeepsTheSealValid) {
  const Keyring keyring = Keyring::Generate();
  auto sealed = keyring.Seal(MakeEnvelope(), "redeliver me");
  detail::PatchAttempt(sealed.envelope.data(), sealed.envelope.size(), 3);
  EXPECT_EQ(keyring.Open(sealed.envelope, sealed.payload), "redeliver me");
}

TEST(KeyringTest, PayloadReplayedUnderAnotherEnvelopeIsRejected) {
  const Keyring keyring = Keyring::Generate();
  const auto first = keyring.Seal(MakeEnvelope(), "transfer 10");
  const auto second = keyring.Seal(MakeEnvelope(), "transfer 99");
  EXPECT_EQ(OpenFailure(keyring, second.envelope, first.payload), ErrorCode::kUnauthenticated);
}

TEST(KeyringTest, UnknownKeyIdIsReported) {
  const Keyring sender = Keyring::Generate();
  Keyring receiver = Keyring::Generate();
  const std::uint32_t first = receiver.active_key_id();
  receiver.Rotate();
  ASSERT_TRUE(receiver.RemoveKey(first));
  const auto sealed = sender.Seal(MakeEnvelope(), "x");
  EXPECT_EQ(OpenFailure(receiver, sealed.envelope, sealed.payload), ErrorCode::kUnknownKey);
}

TEST(KeyringTest, SameIdDifferentSecretFailsAuthentication) {
  const Keyring sender = Keyring::Generate();
  const auto sealed = sender.Seal(MakeEnvelope(), "x");
  Keyring other;
  other.AddKey(sender.active_key_id(), std::string(32, 'o'));
  other.SetActive(sender.active_key_id());
  EXPECT_EQ(OpenFailure(other, sealed.envelope, sealed.payload), ErrorCode::kUnauthenticated);
}

// Two keyrings made apart: their key ids differ, so a job sealed with one is "unknown key
// N" to the other, which names what is missing.
TEST(KeyringTest, KeyringsMadeApartShareNoKeyId) {
  const Keyring first = Keyring::Generate();
  const Keyring second = Keyring::Generate();
  EXPECT_NE(first.active_key_id(), second.active_key_id());
  const auto sealed = first.Seal(MakeEnvelope(), "x");
  EXPECT_EQ(OpenFailure(second, sealed.envelope, sealed.payload), ErrorCode::kUnknownKey);
}

TEST(KeyringTest, RotationKeepsOldKeysOpening) {
  TempDir dir;
  const fs::path file = dir.path() / "keys.toml";
  Keyring keyring = Keyring::Generate();
  const std::uint32_t first = keyring.active_key_id();
  const auto before = keyring.Seal(MakeEnvelope(), "old");
  EXPECT_EQ(keyring.Rotate(), first + 1);
  const auto after = keyring.Seal(MakeEnvelope(), "new");
  EXPECT_EQ(detail::DecodeEnvelope(after.envelope).key_id, first + 1);
  keyring.Save(file);
  const Keyring reloaded = Keyring::Load(file);
  EXPECT_EQ(reloaded.active_key_id(), first + 1);
  EXPECT_EQ(reloaded.Open(before.envelope, before.payload), "old");
  EXPECT_EQ(reloaded.Open(after.envelope, after.payload), "new");
  EXPECT_THROW(keyring.RemoveKey(first + 1), Error);
}

TEST(KeyringTest, UnsealedEnvelopeCannotBeOpened) {
  const Keyring keyring = Keyring::Generate();
  Envelope envelope = MakeEnvelope();
  const std::string bytes = detail::EncodeEnvelope(envelope);
  EXPECT_EQ(OpenFailure(keyring, bytes, std::string(20, 'x')), ErrorCode::kUnauthenticated);
}

TEST(KeyFileTest, GeneratedFileIsPrivateAndLoads) {
  TempDir dir;
  const fs::path file = dir.path() / "keyring.toml";
  const std::uint32_t id = GenerateKeyFile(file);
  EXPECT_GE(id, 1u);
  EXPECT_LT(id, 1u << 31);
  struct stat info {};
  ASSERT_EQ(::stat(file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(Keyring::Load(file).size(), 1u);
  EXPECT_EQ(Keyring::Load(file).active_key_id(), id);
  EXPECT_THROW(GenerateKeyFile(file), Error);  // never overwrites
}

TEST(KeyFileTest, LoadOrCreateMakesTheFileOnce) {
  TempDir dir;
  const fs::path file = dir.path() / "nested" / "keyring.toml";
  const Keyring first = Keyring::LoadOrCreate(file);
  const auto sealed = first.Seal(MakeEnvelope(), "shared");
  EXPECT_EQ(Keyring::LoadOrCreate(file).Open(sealed.envelope, sealed.payload), "shared");
}

// Returns: the names of the entries in `dir`.
std::set<std::string> Entries(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename().string());
  return names;
}

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

unsigned Mode(const fs::path& path) {
  struct stat info {};
  EXPECT_EQ(::stat(path.c_str(), &info), 0) << path;
  return info.st_mode & 07777;
}

TEST(KeyFileTest, LoadOrCreateReturnsAnExistingFileUnchanged) {
  TempDir dir;
  const fs::path file = dir.path() / "keyring.toml";
  Keyring original = Keyring::Generate();
  const std::uint32_t first = original.active_key_id();
  original.Rotate();  // two keys, the second active: nothing LoadOrCreate would make itself
  original.Save(file);
  const std::string before = ReadFile(file);
  const Keyring loaded = Keyring::LoadOrCreate(file);
  EXPECT_EQ(loaded.active_key_id(), first + 1);
  EXPECT_EQ(loaded.ids(), (std::vector<std::uint32_t>{first, first + 1}));
  EXPECT_EQ(loaded.Fingerprint(first), original.Fingerprint(first));
  EXPECT_EQ(loaded.Fingerprint(first + 1), original.Fingerprint(first + 1));
  EXPECT_EQ(ReadFile(file), before);
  EXPECT_EQ(Entries(dir.path()), std::set<std::string>{"keyring.toml"});
}

TEST(KeyFileTest, LoadOrCreateMakesAPrivateFileAndDirectoriesAndNoTempFiles) {
  TempDir dir;
  const fs::path file = dir.path() / "config" / "courier" / "keyring.toml";
  const Keyring created = Keyring::LoadOrCreate(file);
  EXPECT_EQ(created.size(), 1u);
  EXPECT_EQ(Mode(file), 0600u);
  EXPECT_EQ(Mode(file.parent_path()), 0700u);
  EXPECT_EQ(Mode(file.parent_path().parent_path()), 0700u);
  EXPECT_EQ(Keyring::Load(file).Fingerprint(created.active_key_id()), created.Fingerprint(created.active_key_id()));
  EXPECT_EQ(Entries(file.parent_path()), std::set<std::string>{"keyring.toml"});
}

TEST(KeyFileTest, GenerateKeyFileRefusesAnExistingFile) {
  TempDir dir;
  const fs::path file = dir.path() / "keyring.toml";
  ASSERT_NE(GenerateKeyFile(file), 0u);
  const std::string before = ReadFile(file);
  try {
    GenerateKeyFile(file);
    FAIL() << "overwrote an existing key file";
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kIo);
    EXPECT_NE(std::string(error.what()).find("already exists"), std::string::npos) << error.what();
  }
  EXPECT_EQ(ReadFile(file), before);
  EXPECT_EQ(Mode(file), 0600u);
  EXPECT_EQ(Entries(dir.path()), std::set<std::string>{"keyring.toml"});  // no temp file left
}

TEST(KeyFileTest, FailuresLeaveNoTempFilesBehind) {
  TempDir dir;
  // Tests run as root, so permissions cannot make a directory unwritable: a regular file
  // where a directory should be does.
  const fs::path blocker = dir.path() / "not-a-directory";
  std::ofstream(blocker) << "x";
  EXPECT_THROW(Keyring::LoadOrCreate(blocker / "keyring.toml"), Error);
  EXPECT_THROW(Keyring::LoadOrCreate(blocker / "courier" / "keyring.toml"), Error);
  EXPECT_THROW(GenerateKeyFile(blocker / "keyring.toml"), Error);
  EXPECT_THROW(Keyring::Generate().Save(blocker / "keyring.toml"), Error);
  EXPECT_EQ(Entries(dir.path()), std::set<std::string>{"not-a-directory"});
  EXPECT_EQ(ReadFile(blocker), "x");

  // A failure after the temp file was written: replacing a directory fails at rename().
  const fs::path occupied = dir.path() / "keyring.toml";
  fs::create_directory(occupied);
  EXPECT_THROW(Keyring::Generate().Save(occupied), Error);
  EXPECT_THROW(GenerateKeyFile(occupied), Error);  // exists: refused, temp file discarded
  EXPECT_EQ(Entries(dir.path()), (std::set<std::string>{"keyring.toml", "not-a-directory"}));
  EXPECT_TRUE(fs::is_directory(occupied));
}

TEST(KeyFileTest, SaveReplacesAtomicallyWithAPrivateFile) {
  TempDir dir;
  const fs::path file = dir.path() / "keyring.toml";
  const std::uint32_t first = GenerateKeyFile(file);
  Keyring keyring = Keyring::Load(file);
  keyring.Rotate();
  keyring.Save(file);
  EXPECT_EQ(Keyring::Load(file).active_key_id(), first + 1);
  EXPECT_EQ(Mode(file), 0600u);
  EXPECT_EQ(Entries(dir.path()), std::set<std::string>{"keyring.toml"});
}

TEST(KeyFileTest, ConcurrentSavesAndLoadsOnlyEverSeeWholeFiles) {
  TempDir dir;
  const fs::path file = dir.path() / "keyring.toml";
  std::vector<Keyring> keyrings;
  std::set<std::string> fingerprints;
  for (int i = 0; i < 3; ++i) {
    keyrings.push_back(Keyring::Generate());
    fingerprints.insert(keyrings.back().Fingerprint(keyrings.back().active_key_id()));
  }
  keyrings[0].Save(file);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (const Keyring& keyring : keyrings) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        try {
          keyring.Save(file);
        } catch (const Error&) {
          ++failures;
        }
      }
    });
  }
  threads.emplace_back([&] {
    for (int i = 0; i < 150; ++i) {
      try {
        const Keyring loaded = Keyring::Load(file);
        if (fingerprints.count(loaded.Fingerprint(loaded.active_key_id())) == 0) ++failures;
      } catch (const Error&) {
        ++failures;  // a partial or mixed file
      }
    }
  });
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  const Keyring last = Keyring::Load(file);
  EXPECT_EQ(fingerprints.count(last.Fingerprint(last.active_key_id())), 1u);
  EXPECT_EQ(Entries(dir.path()), std::set<std::string>{"keyring.toml"});
}

TEST(PrivateFileTest, CreateNeverReplacesAndWriteDoes) {
  TempDir dir;
  const fs::path file = dir.path() / "secret";
  EXPECT_TRUE(detail::CreatePrivateFile(file, "first"));
  EXPECT_FALSE(detail::CreatePrivateFile(file, "second"));
  EXPECT_EQ(ReadFile(file), "first");
  detail::WritePrivateFile(file, "third");
  EXPECT_EQ(ReadFile(file), "third");
  EXPECT_EQ(Mode(file), 0600u);
  EXPECT_EQ(Entries(dir.path()), std::set<std::string>{"secret"});
}

TEST(PrivateFileTest, FilesArePrivateWhateverTheUmask) {
  TempDir dir;
  const mode_t previous = ::umask(0277);  // would leave the owner unable to write
  const bool created = detail::CreatePrivateFile(dir.path() / "created", "a");
  detail::WritePrivateFile(dir.path() / "written", "b");
  ::umask(previous);
  EXPECT_TRUE(created);
  EXPECT_EQ(Mode(dir.path() / "created"), 0600u);
  EXPECT_EQ(Mode(dir.path() / "written"), 0600u);
}

void ExpectLoadError(const fs::path& file, std::string_view fragment) {
  try {
    Keyring::Load(file);
    FAIL() << "loaded a bad key file; expected: " << fragment;
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kConfig);
    const std::string message = error.what();
    EXPECT_NE(message.find(file.string()), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

void WriteFile(const fs::path& file, std::string_view text, fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
  std::ofstream(file) << text;
  fs::permissions(file, perms);
}

TEST(KeyFileTest, RefusesFilesOthersCanRead) {
  TempDir dir;
  const fs::path file = dir.path() / "keyring.toml";
  GenerateKeyFile(file);
  fs::permissions(file, fs::perms::group_read, fs::perm_options::add);
  ExpectLoadError(file, "lets group or others read it");
  fs::permissions(file, fs::perms::group_read, fs::perm_options::remove);
  fs::permissions(file, fs::perms::others_read, fs::perm_options::add);
  ExpectLoadError(file, "chmod 600");
}

TEST(KeyFileTest, RefusesMalformedFilesSayingWhy) {
  TempDir dir;
  const fs::path file = dir.path() / "keyring.toml";
  ExpectLoadError(file, "does not exist");
  const std::string secret(64, 'a');
  WriteFile(file, "active = [");
  ExpectLoadError(file, "line 1");
  WriteFile(file, "active = 1\n");
  ExpectLoadError(file, "no [[key]] entries");
  WriteFile(file, "active = 1\n[[key]]\nid = 1\nsecret = \"abc\"\n");
  ExpectLoadError(file, "64 hex digits");
  WriteFile(file, "active = 1\n[[key]]\nid = 1\nsecret = \"" + std::string(64, 'z') + "\"\n");
  ExpectLoadError(file, "not hexadecimal");
  WriteFile(file, "active = 2\n[[key]]\nid = 1\nsecret = \"" + secret + "\"\n");
  ExpectLoadError(file, "active key 2 is not among");
  WriteFile(file, "[[key]]\nid = 1\nsecret = \"" + secret + "\"\n");
  ExpectLoadError(file, "'active'");
  WriteFile(file, "active = 1\n[[key]]\nid = 0\nsecret = \"" + secret + "\"\n");
  ExpectLoadError(file, "id must be an integer");
  WriteFile(file, "active = 1\n[[key]]\nid = 1\nsecret = \"" + secret + "\"\n[[key]]\nid = 1\nsecret = \"" + secret + "\"\n");
  ExpectLoadError(file, "duplicate key id 1");
  WriteFile(file, "active = 1\nactiv = 2\n[[key]]\nid = 1\nsecret = \"" + secret + "\"\n");
  ExpectLoadError(file, "unknown key 'activ'");
}

TEST(JobIdTest, HexRoundTripAndIdempotencyKeysAreStable) {
  const JobId id = JobId::Random();
  EXPECT_EQ(JobId::FromHex(id.Hex()), id);
  EXPECT_FALSE(JobId::FromHex("xyz").has_value());
  EXPECT_FALSE(JobId::FromHex(std::string(32, 'g')).has_value());
  const Keyring keyring = Keyring::Generate();
  EXPECT_EQ(keyring.JobIdFor("order-42"), keyring.JobIdFor("order-42"));
  EXPECT_NE(keyring.JobIdFor("order-42"), keyring.JobIdFor("order-43"));
  // Keyed: another keyring (an attacker's) derives another id for the same key.
  EXPECT_NE(Keyring::Generate().JobIdFor("order-42"), keyring.JobIdFor("order-42"));
  EXPECT_EQ(JobId::FromBytes(id.View()), id);
}

}  // namespace
}  // namespace courier
