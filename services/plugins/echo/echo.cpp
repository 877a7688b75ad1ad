// echo — replies with the request, unchanged. The smallest complete Courier plugin.
//
//   courier-worker --plugin ./libecho.so
//   courier call echo '{"hello": "world"}'
#include <courier/plugin.hpp>

namespace {

class EchoService {
 public:
  // The name clients call, and the [services.echo] table its settings live in.
  static constexpr std::string_view kName = "echo";

  // echo has no settings of its own; rejecting unknown keys turns a typo into an error.
  explicit EchoService(const courier::ConfigSection& config) { config.RejectUnknownKeys(); }

  // Any MessagePack document in, the same document out. Called from many threads at once.
  courier::Value Handle(courier::Value request) const { return request; }
};

}  // namespace

COURIER_PLUGIN(EchoService)
