#include "plugin_loader.hpp"

#include <dlfcn.h>

#include <string>

#include "courier/error.hpp"

namespace courier::detail {
namespace {

[[noreturn]] void Refuse(const std::filesystem::path& path, const std::string& why) {
  throw Error(ErrorCode::kConfig, "plugin " + path.string() + ": " + why);
}

}  // namespace

void CheckPluginTable(const CourierPluginV1& table, const std::filesystem::path& path) {
  if (table.abi_version != kPluginAbiVersion) {
    const std::string theirs = table.courier_version != nullptr ? table.courier_version : "unknown";
    Refuse(path, "built for Courier plugin ABI " + std::to_string(table.abi_version) + " (Courier " +
                     theirs + "), but this host speaks plugin ABI " + std::to_string(kPluginAbiVersion) +
                     " (Courier " COURIER_VERSION_STRING "): rebuild the plugin against this Courier's headers");
  }
  if (table.service_count == 0 || table.services == nullptr) Refuse(path, "declares no services");
  for (std::uint32_t i = 0; i < table.service_count; ++i) {
    const CourierServiceV1& service = table.services[i];
    if (service.name == nullptr || service.name_size == 0 || service.name_size > 255 ||
        service.create == nullptr) {
      Refuse(path, "service entry " + std::to_string(i) + " is malformed");
    }
  }
}

const CourierPluginV1& LoadPluginFile(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) Refuse(path, "no such file");
  // A path without a slash would make dlopen search the library path instead.
  const std::string file = path.has_parent_path() ? path.string() : "./" + path.string();
  dlerror();
  void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (handle == nullptr) {
    const char* why = dlerror();
    Refuse(path, std::string("cannot load: ") + (why != nullptr ? why : "unknown dlopen error"));
  }
  void* symbol = dlsym(handle, "courier_plugin_v1");
  if (symbol == nullptr) {
    for (int version = 2; version <= 16; ++version) {
      const std::string name = "courier_plugin_v" + std::to_string(version);
      if (dlsym(handle, name.c_str()) != nullptr) {
        Refuse(path, "exports " + name + ", an entry point from a newer Courier; this host (Courier " +
                         std::string(COURIER_VERSION_STRING) + ") loads courier_plugin_v1 plugins only");
      }
    }
    Refuse(path, "not a Courier plugin: it exports no courier_plugin_v1 (add COURIER_PLUGIN(YourService) "
                 "to one of its source files)");
  }
  const auto entry = reinterpret_cast<CourierPluginEntryV1>(symbol);
  const CourierPluginV1* table = entry();
  if (table == nullptr) Refuse(path, "courier_plugin_v1 returned no table");
  CheckPluginTable(*table, path);
  return *table;
}

}  // namespace courier::detail
