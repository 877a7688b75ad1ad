#include "courier/curve.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "courier/config.hpp"
#include "courier/error.hpp"
#include "courier/job.hpp"

namespace courier {
namespace {

namespace fs = std::filesystem;

class CurveKeyFileTest : public ::testing::Test {
 protected:
  CurveKeyFileTest() : dir_(fs::temp_directory_path() / ("courier-curve-" + JobId::Random().Hex())) {
    fs::create_directories(dir_);
  }
  ~CurveKeyFileTest() override { fs::remove_all(dir_); }

  std::string LoadError(const fs::path& file) {
    try {
      LoadCurveKeyPair(file);
    } catch (const Error& error) {
      EXPECT_EQ(error.code(), ErrorCode::kConfig);
      return error.what();
    }
    ADD_FAILURE() << "loaded a bad key file";
    return {};
  }

  fs::path dir_;
};

TEST_F(CurveKeyFileTest, GeneratedPairSavesPrivatelyAndLoads) {
  const CurveKeyPair pair = GenerateCurveKeyPair("broker-1");
  EXPECT_TRUE(IsCurveKey(pair.public_key));
  const fs::path file = dir_ / "broker.key";
  SaveCurveKeyPair(file, pair);
  EXPECT_EQ(fs::status(file).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  const CurveKeyPair loaded = LoadCurveKeyPair(file);
  EXPECT_EQ(loaded.public_key, pair.public_key);
  EXPECT_EQ(loaded.secret_key, pair.secret_key);
  EXPECT_EQ(loaded.name, "broker-1");
  EXPECT_THROW(SaveCurveKeyPair(file, pair), Error);
}

TEST_F(CurveKeyFileTest, RefusesLoosePermissionsAndBadKeys) {
  const CurveKeyPair pair = GenerateCurveKeyPair("x");
  const fs::path file = dir_ / "loose.key";
  SaveCurveKeyPair(file, pair);
  fs::permissions(file, fs::perms::others_read, fs::perm_options::add);
  EXPECT_NE(LoadError(file).find("chmod 600"), std::string::npos);

  const fs::path mismatched = dir_ / "mismatch.key";
  const CurveKeyPair other = GenerateCurveKeyPair("y");
  SaveCurveKeyPair(mismatched, CurveKeyPair{"m", other.public_key, pair.secret_key});
  EXPECT_NE(LoadError(mismatched).find("does not belong"), std::string::npos);

  const fs::path short_key = dir_ / "short.key";
  SaveCurveKeyPair(short_key, CurveKeyPair{"s", "abc", pair.secret_key});
  EXPECT_NE(LoadError(short_key).find("40-character Z85"), std::string::npos);
  EXPECT_NE(LoadError(dir_ / "missing.key").find("keygen --curve"), std::string::npos);
}

TEST_F(CurveKeyFileTest, AllowListNamesEachBadLine) {
  const CurveKeyPair pair = GenerateCurveKeyPair("ok");
  const fs::path file = dir_ / "clients.allow";
  std::ofstream(file) << "good = \"" << pair.public_key << "\"\nbad = \"not a key\"\n";
  try {
    LoadCurveAllowList(file);
    FAIL();
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("line 2"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("bad"), std::string::npos);
  }
  std::ofstream(file) << "good = \"" << pair.public_key << "\"\n";
  EXPECT_EQ(LoadCurveAllowList(file).at("good"), pair.public_key);
}

std::string ConfigError(const std::function<void()>& action) {
  try {
    action();
  } catch (const Error& error) {
    EXPECT_EQ(error.code(), ErrorCode::kConfig);
    return error.what();
  }
  ADD_FAILURE() << "accepted a bad CURVE setting";
  return {};
}

TEST_F(CurveKeyFileTest, PublicKeyFilesMayBeBareOrToml) {
  const CurveKeyPair pair = GenerateCurveKeyPair("broker");
  std::ofstream(dir_ / "bare.pub") << "  " << pair.public_key << "\n";
  std::ofstream(dir_ / "toml.pub") << "# the broker\npublic = \"" << pair.public_key << "\"\n";
  SaveCurveKeyPair(dir_ / "pair.key", pair);
  std::ofstream(dir_ / "junk.pub") << "hello\n";
  EXPECT_EQ(LoadCurvePublicKey(dir_ / "bare.pub"), pair.public_key);
  EXPECT_EQ(LoadCurvePublicKey(dir_ / "toml.pub"), pair.public_key);
  EXPECT_EQ(LoadCurvePublicKey(dir_ / "pair.key"), pair.public_key);
  EXPECT_NE(ConfigError([&] { LoadCurvePublicKey(dir_ / "junk.pub"); }).find("holds no public key"), std::string::npos);
  EXPECT_NE(ConfigError([&] { LoadCurvePublicKey(dir_ / "none.pub"); }).find("cannot be read"), std::string::npos);
  EXPECT_EQ(ResolveCurvePublicKey(pair.public_key), pair.public_key);
  EXPECT_EQ(ResolveCurvePublicKey((dir_ / "bare.pub").string()), pair.public_key);
  EXPECT_NE(ConfigError([&] { ResolveCurvePublicKey(std::string(40, '"')); }).find("not a valid Z85 key"),
            std::string::npos);
}

TEST_F(CurveKeyFileTest, SecurityTableTurnsCurveOnWithPathsRelativeToTheFile) {
  const CurveKeyPair server = GenerateCurveKeyPair("broker");
  const CurveKeyPair own = GenerateCurveKeyPair("client-a");
  SaveCurveKeyPair(dir_ / "client.key", own);
  std::ofstream(dir_ / "broker.pub") << server.public_key << "\n";
  std::ofstream(dir_ / "client.toml") << "[security]\ncurve = true\nserver_key_file = \"broker.pub\"\n"
                                       << "key_file = \"client.key\"\n";
  const ConfigSection root = ConfigSection::LoadFile(dir_ / "client.toml");
  const CurveOptions options = CurveOptions::FromConfig(root.Section("security"));
  EXPECT_TRUE(options.enabled());
  EXPECT_EQ(options.server_public_key, server.public_key);
  EXPECT_EQ(options.key_file, dir_ / "client.key");
  EXPECT_FALSE(options.keys);
  const CurveOptions resolved = options.Resolved();
  ASSERT_TRUE(resolved.keys);
  EXPECT_EQ(resolved.keys->name, "client-a");
  EXPECT_EQ(resolved.keys->secret_key, own.secret_key);

  const auto read = [](const std::string& text) {
    return CurveOptions::FromConfig(ConfigSection::Parse(text, "c.toml").Section("security"));
  };
  EXPECT_FALSE(read("").enabled());
  EXPECT_FALSE(read("[security]\ncurve = false\nkey_file = \"x\"\n").enabled());
  const std::string key = "server_key = \"" + server.public_key + "\"\n";
  EXPECT_NE(ConfigError([&] { read("[security]\ncurve = true\n" + key); }).find("needs key_file"), std::string::npos);
  EXPECT_NE(ConfigError([&] { read("[security]\ncurve = true\nkey_file = \"k\"\n"); }).find("needs server_key"),
            std::string::npos);
  EXPECT_NE(ConfigError([&] { read("[security]\ncurve = true\nkey_file = \"k\"\nserver_key = \"short\"\n"); })
                .find("security.server_key"),
            std::string::npos);
  EXPECT_NE(ConfigError([&] { read("[security]\ncurve = true\nkey_file = \"k\"\nserver_key_file = \"f\"\n" + key); })
                .find("not both"),
            std::string::npos);
  EXPECT_NE(ConfigError([&] { read("[security]\ncurv = true\n"); }).find("curv"), std::string::npos);
}

TEST_F(CurveKeyFileTest, ResolvedRefusesLooseFilesAndHalfSettings) {
  const CurveKeyPair server = GenerateCurveKeyPair("broker");
  const fs::path loose = dir_ / "loose.key";
  SaveCurveKeyPair(loose, GenerateCurveKeyPair("w"));
  fs::permissions(loose, fs::perms::group_read, fs::perm_options::add);
  CurveOptions options;
  options.server_public_key = server.public_key;
  options.key_file = loose;
  EXPECT_NE(ConfigError([&] { (void)options.Resolved(); }).find("chmod 600"), std::string::npos);
  options.key_file.clear();
  EXPECT_NE(ConfigError([&] { (void)options.Resolved(); }).find("no key pair"), std::string::npos);
  CurveOptions key_only;
  key_only.keys = GenerateCurveKeyPair("k");
  EXPECT_NE(ConfigError([&] { (void)key_only.Resolved(); }).find("not the broker's public key"), std::string::npos);
  EXPECT_FALSE(CurveOptions{}.Resolved().enabled());  // off: nothing to load
}

}  // namespace
}  // namespace courier
