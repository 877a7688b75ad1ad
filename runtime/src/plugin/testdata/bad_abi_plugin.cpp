// A plugin that claims to be built for plugin ABI 999, for plugin_loader_test.
#include <courier/plugin.hpp>

namespace {

class Echo {
 public:
  static constexpr std::string_view kName = "fixture.echo";
  courier::Value Handle(courier::Value request) const { return request; }
};

constexpr CourierServiceV1 kServices[] = {courier::detail::DescribeService<Echo>()};
constexpr CourierPluginV1 kPlugin{999, "9.9.9", 1, kServices};

}  // namespace

extern "C" __attribute__((visibility("default"))) const CourierPluginV1* courier_plugin_v1() {
  return &kPlugin;
}
