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

TEST_F(CurveKeyFileTest, AllowListEntriesBindRolesServicesAndCaps) {
  const CurveKeyPair a = GenerateCurveKeyPair("a");
  const CurveKeyPair b = GenerateCurveKeyPair("b");
  const fs::path workers = dir_ / "workers.allow";
  std::ofstream(workers) << "plain = \"" << a.public_key << "\"\nsink = { key = \"" << b.public_key
                         << "\", services = [\"courier.errors\", \"img.*\"], max_capacity = 8 }\n";
  const auto entries = LoadCurveAllowEntries(workers, CurveRole::kWorker);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].name, "plain");
  EXPECT_EQ(entries[0].role, CurveRole::kWorker);
  EXPECT_TRUE(entries[0].services.empty());
  EXPECT_EQ(entries[0].max_capacity, 0u);
  EXPECT_EQ(entries[1].services, (std::vector<std::string>{"courier.errors", "img.*"}));
  EXPECT_EQ(entries[1].max_capacity, 8u);
  EXPECT_EQ(LoadCurveAllowList(workers).at("sink"), b.public_key);  // the old reader sees both forms

  const fs::path clients = dir_ / "clients.allow";
  std::ofstream(clients) << "app = \"" << a.public_key << "\"\nops = { key = \"" << b.public_key
                         << "\", role = \"operator\" }\n";
  const auto client_entries = LoadCurveAllowEntries(clients, CurveRole::kClient);
  EXPECT_EQ(client_entries.at(0).role, CurveRole::kClient);
  EXPECT_EQ(client_entries.at(1).role, CurveRole::kOperator);
  EXPECT_EQ(LoadCurveAllowList(clients).at("ops"), b.public_key);

  const auto error_of = [&](const std::string& text, CurveRole role) {
    std::ofstream(clients) << text;
    try {
      LoadCurveAllowEntries(clients, role);
    } catch (const Error& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  const std::string key = "key = \"" + a.public_key + "\"";
  EXPECT_NE(error_of("w = { " + key + ", role = \"operator\" }\n", CurveRole::kWorker).find("role must be"),
            std::string::npos);
  EXPECT_NE(error_of("c = { " + key + ", services = [\"x\"] }\n", CurveRole::kClient).find("unknown key 'services'"),
            std::string::npos);
  EXPECT_NE(error_of("w = { " + key + ", services = [\"*\"] }\n", CurveRole::kWorker).find("prefix.*"),
            std::string::npos);
  EXPECT_NE(error_of("w = { " + key + ", max_capacity = 0 }\n", CurveRole::kWorker).find("1..1000000"),
            std::string::npos);
  EXPECT_NE(error_of("w = { role = \"worker\" }\n", CurveRole::kWorker).find("line 1"), std::string::npos);
}

TEST(CurveServiceMatches, NamesAndPrefixPatterns) {
  EXPECT_TRUE(CurveServiceMatches("echo", "echo"));
  EXPECT_FALSE(CurveServiceMatches("echo", "echo2"));
  EXPECT_TRUE(CurveServiceMatches("img.*", "img.resize"));
  EXPECT_FALSE(CurveServiceMatches("img.*", "img."));
  EXPECT_FALSE(CurveServiceMatches("img.*", "img"));
  EXPECT_FALSE(CurveServiceMatches("img.*", "imgx.resize"));
  EXPECT_TRUE(CurveServiceMatches("courier.*", "courier.errors"));
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
