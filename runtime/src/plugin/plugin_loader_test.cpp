#include "plugin_loader.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "courier/error.hpp"
#include "courier/worker.hpp"

namespace courier::detail {
namespace {

using ::testing::HasSubstr;

const std::filesystem::path kDir = COURIER_FIXTURE_PLUGIN_DIR;

std::string LoadError(const std::filesystem::path& path) {
  try {
    LoadPluginFile(path);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kConfig);
    return e.what();
  }
  return "";
}

TEST(PluginLoader, LoadsAWellFormedPlugin) {
  const CourierPluginV1& table = LoadPluginFile(kDir / "libcourier_fixture_good.so");
  EXPECT_EQ(table.abi_version, kPluginAbiVersion);
  ASSERT_EQ(table.service_count, 2u);
  EXPECT_EQ(std::string_view(table.services[0].name, table.services[0].name_size), "fixture.upper");
  EXPECT_EQ(table.services[1].idempotent, 0u);
  EXPECT_NE(table.services[1].schema, nullptr);
}

TEST(PluginLoader, RefusesAnotherAbiNamingTheFileAndBothVersions) {
  const std::filesystem::path path = kDir / "libcourier_fixture_bad_abi.so";
  const std::string message = LoadError(path);
  EXPECT_THAT(message, HasSubstr(path.string()));
  EXPECT_THAT(message, HasSubstr("plugin ABI 999 (Courier 9.9.9)"));
  EXPECT_THAT(message, HasSubstr("this host speaks plugin ABI " + std::to_string(kPluginAbiVersion)));
}

TEST(PluginLoader, RefusesFilesThatAreNotPlugins) {
  EXPECT_THAT(LoadError(kDir / "missing.so"), HasSubstr("no such file"));
  const std::filesystem::path text = std::filesystem::temp_directory_path() / "courier-not-a-plugin.so";
  std::ofstream(text) << "hello";
  EXPECT_THAT(LoadError(text), HasSubstr("cannot load"));
  std::filesystem::remove(text);
}

TEST(PluginLoader, HostRegistersPluginServicesWithTheirTables) {
  WorkerOptions options = WorkerOptions::FromConfig(
      ConfigSection::Parse("[services.\"fixture.upper\"]\nsuffix = \"!\"\ncapacity = 3\n", "worker.toml"));
  options.handle_signals = false;
  WorkerHost host(std::move(options));
  EXPECT_EQ(host.LoadPlugin(kDir / "libcourier_fixture_good.so", {"fixture.upper"}),
            std::vector<std::string>{"fixture.upper"});
  // Loading the same file again for all its services adds only the missing one.
  EXPECT_EQ(host.LoadPlugin(kDir / "libcourier_fixture_good.so"), std::vector<std::string>{"fixture.fail"});
  EXPECT_EQ(host.services(), (std::vector<std::string>{"fixture.upper", "fixture.fail"}));
  try {
    host.LoadPlugin(kDir / "libcourier_fixture_good.so", {"nope"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("provides no service \"nope\" (it provides: fixture.upper, fixture.fail)"));
  }
}

}  // namespace
}  // namespace courier::detail
