#include "courier/curve.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

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

}  // namespace
}  // namespace courier
