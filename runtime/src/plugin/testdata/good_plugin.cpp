// A well-formed plugin with two services, for plugin_loader_test.
#include <courier/plugin.hpp>

namespace {

class Upper {
 public:
  static constexpr std::string_view kName = "fixture.upper";
  explicit Upper(const courier::ConfigSection& config) : suffix_(config.GetString("suffix", "")) {
    config.RejectUnknownKeys();
  }
  std::string Handle(const std::string& text) const {
    std::string out = text;
    for (char& c : out) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 32 : c);
    return out + suffix_;
  }

 private:
  std::string suffix_;
};

class Fail {
 public:
  static constexpr std::string_view kName = "fixture.fail";
  static constexpr bool kIdempotent = false;
  static constexpr std::string_view kSchema = R"(
[request]
type = "map"
[request.fields.n]
type = "integer"
required = true
)";
  courier::Value Handle(const courier::Value&) const {
    throw courier::Error(courier::ErrorCode::kInvalidPayload, "fixture always fails");
  }
};

}  // namespace

COURIER_PLUGIN(Upper, Fail)
