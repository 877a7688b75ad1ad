// plugin_loader.hpp — open a plugin shared object and check its entry point and ABI.
//
// Plugins are never unloaded: a handler abandoned after a drain may still be running its
// code, and unloading code that static destructors or threads still reference crashes at
// exit. The process keeps every plugin it loaded until it ends.
// Thread-safety: call from one thread (the host's).
#pragma once

#include <filesystem>

#include "courier/plugin.hpp"

namespace courier::detail {

// Returns: the plugin's table, valid for the life of the process.
// Throws: Error(kConfig) if the file cannot be loaded, is not a Courier plugin, or was built
// for another plugin ABI (the message names the file and both versions).
const CourierPluginV1& LoadPluginFile(const std::filesystem::path& path);

// Checks a plugin table against this host's ABI. Throws: Error(kConfig) as above.
void CheckPluginTable(const CourierPluginV1& table, const std::filesystem::path& path);

}  // namespace courier::detail
