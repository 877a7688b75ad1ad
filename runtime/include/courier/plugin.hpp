// courier/plugin.hpp — the plugin API: a Courier service is a small C++ class.
//
//   #include <courier/plugin.hpp>
//
//   class EchoService {
//    public:
//     static constexpr std::string_view kName = "echo";     // the service name clients call
//     explicit EchoService(const courier::ConfigSection& config) {   // [services.echo]
//       config.RejectUnknownKeys();
//     }
//     courier::Value Handle(const courier::Value& request) const { return request; }
//   };
//
//   COURIER_PLUGIN(EchoService)   // once per shared object; lists every service it holds
//
// That is a complete plugin: build it as a MODULE library linked to Courier::plugin and run
// `courier-worker --plugin ./libecho.so`. The same class links straight into a custom
// worker main too (courier/worker.hpp: `host.Register<EchoService>()`).
//
// A service class S:
//   - declares `static constexpr std::string_view kName` (1..255 bytes, unique per host);
//   - is constructible from `const courier::ConfigSection&` (its [services.NAME] table;
//     read every key with the typed getters, then call RejectUnknownKeys()) or, for a
//     service without settings, default-constructible;
//   - has exactly one member function `Handle`, in one of these shapes:
//       Reply Handle(Request request) [const]
//       Reply Handle(Request request, const courier::JobContext& job) [const]
//     Request is courier::Value (any MessagePack document) or a type msgpack-c converts
//     to (a MSGPACK_DEFINE / MSGPACK_DEFINE_MAP struct, std::map, ...), taken by value or
//     by (const) reference. Reply is courier::Value, a type msgpack-c packs, or void (a
//     nil reply);
//   - optionally declares `static constexpr bool kIdempotent = false;` when running the
//     same job twice would do harm (charging a card). The host then remembers each job id
//     for a window (default 5 minutes / 10,000 ids) and answers a redelivered job with the
//     first run's result (reply or error) instead of running it again. Default: true;
//   - optionally declares `static constexpr std::string_view kSchema` holding its payload
//     schema (TOML, schemas/SCHEMA.md); a schema file configured for the service, or found
//     in the host's schema directories as NAME.toml, takes precedence.
//
// Errors: a handler reports failure by throwing. courier::Error keeps its code (for
// instance Error(ErrorCode::kInvalidPayload, "width must be even")); any other exception
// becomes handler_error with the exception's what() as message. The client gets a
// structured error reply, the error sink gets a record, and the host keeps serving. A
// handler that crashes the process (abort, segfault) takes its host down: the broker
// redelivers its jobs to other hosts, so make crashes impossible, not rare.
//
// Thread-safety: the host calls Handle concurrently from its thread pool (up to the
// service's capacity at once) on ONE instance, so Handle must be safe to call from many
// threads: keep it const, or guard mutable state (std::atomic, std::mutex). The
// constructor and destructor run on the host's main thread.
//
// ABI: plugins are C++ shared objects loaded into the host, so a plugin and its host must
// be built against the same Courier headers (same kPluginAbiVersion) with compatible
// compilers (GCC/libstdc++ C++11 ABI). The host checks the version before calling
// anything and refuses a mismatch, naming the file and both versions.
#pragma once

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "courier/codec.hpp"
#include "courier/config.hpp"
#include "courier/error.hpp"
#include "courier/job.hpp"
#include "courier/value.hpp"
#include "courier/version.hpp"

// Bumped whenever a type that crosses the plugin boundary (the tables below, JobContext,
// detail::ServiceInstance, ConfigSection, Value, Error) changes its layout or meaning.
#define COURIER_PLUGIN_ABI_VERSION 2  // 2: JobContext::sealed()

namespace courier {

inline constexpr std::uint32_t kPluginAbiVersion = COURIER_PLUGIN_ABI_VERSION;

namespace detail {
template <class S>
class ServiceModel;
struct JobContextAccess;
}  // namespace detail

// What a handler may know about the job it runs: identity, attempt and deadline. The
// payload itself is the handler's argument.
// Thread-safety: read-only for the handler; one per job.
class JobContext {
 public:
  // A context for a sealed job without a deadline worth the name (one hour from now): for
  // unit tests that call a service's Handle directly.
  JobContext();
  // Returns: the context of the job `envelope` describes.
  explicit JobContext(const Envelope& envelope);

  const JobId& job_id() const { return job_id_; }
  const std::string& service() const { return service_; }
  // 1 on first delivery; more after a worker was lost (a non-idempotent service may care).
  std::uint32_t attempt() const { return attempt_; }
  std::uint32_t max_attempts() const { return max_attempts_; }
  // The job's deadline in Unix milliseconds; the client stops waiting then.
  std::uint64_t deadline_ms() const { return deadline_ms_; }
  // Returns: the time left before the deadline (zero or negative when it passed). Long
  // handlers may poll it and give up early: a reply after the deadline is discarded and
  // the client is told deadline_exceeded.
  std::chrono::milliseconds remaining() const;
  bool expired() const { return remaining().count() <= 0; }
  // The client's trace id (all zero if it set none), for correlating logs.
  const std::array<std::uint8_t, 16>& trace_id() const { return trace_id_; }
  // Whether the request came sealed (opened with a key this host holds, so its sender holds
  // the payload key too), as opposed to cleartext, which a service admits only with
  // allow_unsealed. A service may keep some requests to key holders: the error sink answers
  // queries only when sealed.
  bool sealed() const { return sealed_; }

 private:
  template <class S>
  friend class detail::ServiceModel;
  friend struct detail::JobContextAccess;

  JobId job_id_;
  std::string service_;
  std::uint32_t attempt_ = 1;
  std::uint32_t max_attempts_ = 1;
  std::uint64_t deadline_ms_ = 0;
  std::array<std::uint8_t, 16> trace_id_{};
  bool sealed_ = true;
  // Set by the adapter when Handle returns, so the host can time "handle" and "convert"
  // apart.
  std::chrono::steady_clock::time_point handled_at_{};
};

namespace detail {

// The type-erased face of a service the host drives. Implemented by ServiceModel<S>;
// nothing else should implement it.
class ServiceInstance {
 public:
  virtual ~ServiceInstance() = default;
  // Runs the handler. `plaintext` is the request's MessagePack and `request` its decoded
  // form (both describe the same document). Returns: the reply's MessagePack.
  // Throws: whatever the handler throws; Error(kInvalidPayload) if the document does not
  // convert to the handler's request type.
  virtual std::string Handle(std::string_view plaintext, Value&& request,
                             JobContext& context) = 0;
};

template <class F>
struct HandlerTraits {
  static constexpr bool kValid = false;
};

#define COURIER_DETAIL_HANDLER_TRAITS(QUALIFIERS)                                   \
  template <class S, class R, class A>                                              \
  struct HandlerTraits<R (S::*)(A) QUALIFIERS> {                                    \
    static constexpr bool kValid = true;                                            \
    static constexpr bool kWithContext = false;                                     \
    using Request = std::remove_cvref_t<A>;                                         \
    using Reply = std::remove_cvref_t<R>;                                           \
  };                                                                                \
  template <class S, class R, class A>                                              \
  struct HandlerTraits<R (S::*)(A, const JobContext&) QUALIFIERS> {                 \
    static constexpr bool kValid = true;                                            \
    static constexpr bool kWithContext = true;                                      \
    using Request = std::remove_cvref_t<A>;                                         \
    using Reply = std::remove_cvref_t<R>;                                           \
  };
COURIER_DETAIL_HANDLER_TRAITS()
COURIER_DETAIL_HANDLER_TRAITS(const)
COURIER_DETAIL_HANDLER_TRAITS(noexcept)
COURIER_DETAIL_HANDLER_TRAITS(const noexcept)
#undef COURIER_DETAIL_HANDLER_TRAITS

template <class S>
concept HasIdempotentFlag = requires {
  { S::kIdempotent } -> std::convertible_to<bool>;
};
template <class S>
concept HasSchema = requires {
  { S::kSchema } -> std::convertible_to<std::string_view>;
};

template <class S>
constexpr bool IsIdempotent() {
  if constexpr (HasIdempotentFlag<S>) {
    return static_cast<bool>(S::kIdempotent);
  } else {
    return true;
  }
}

}  // namespace detail

// Satisfied by every class the host can serve (see the header comment for the contract).
template <class S>
concept Service =
    requires {
      { S::kName } -> std::convertible_to<std::string_view>;
      &S::Handle;
    } && detail::HandlerTraits<decltype(&S::Handle)>::kValid &&
    (std::is_constructible_v<S, const ConfigSection&> || std::is_default_constructible_v<S>);

namespace detail {

// Adapts a service class to ServiceInstance: decode to the handler's request type, call,
// encode the reply.
template <class S>
class ServiceModel final : public ServiceInstance {
 public:
  using Traits = HandlerTraits<decltype(&S::Handle)>;
  using Request = typename Traits::Request;
  using Reply = typename Traits::Reply;

  explicit ServiceModel(const ConfigSection& config) : service_(Construct(config)) {}

  std::string Handle(std::string_view plaintext, Value&& request, JobContext& context) override {
    if constexpr (std::is_same_v<Request, Value>) {
      return Finish(std::move(request), context);
    } else {
      (void)request;
      // The host already checked the document against its limits; converting from the
      // bytes again is cheaper than going through the Value.
      return Finish(Decode<Request>(plaintext, kUnlimited), context);
    }
  }

  S& service() { return service_; }

 private:
  static S Construct(const ConfigSection& config) {
    if constexpr (std::is_constructible_v<S, const ConfigSection&>) {
      return S(config);
    } else {
      return S();
    }
  }

  template <class A>
  decltype(auto) Call(A&& request, const JobContext& context) {
    if constexpr (Traits::kWithContext) {
      return service_.Handle(std::forward<A>(request), context);
    } else {
      (void)context;
      return service_.Handle(std::forward<A>(request));
    }
  }

  template <class A>
  std::string Finish(A&& request, JobContext& context) {
    if constexpr (std::is_void_v<Reply>) {
      Call(std::forward<A>(request), context);
      context.handled_at_ = std::chrono::steady_clock::now();
      return std::string(1, '\xc0');  // nil
    } else {
      Reply reply = Call(std::forward<A>(request), context);
      context.handled_at_ = std::chrono::steady_clock::now();
      if constexpr (std::is_same_v<Reply, Value>) {
        return EncodeValue(reply);
      } else {
        return Encode(reply);
      }
    }
  }

  S service_;
};

}  // namespace detail
}  // namespace courier

// ---------------------------------------------------------------------------------------
// The plugin entry point. A plugin shared object exports exactly one C function,
//   extern "C" const CourierPluginV1* courier_plugin_v1();
// which COURIER_PLUGIN(...) writes for you. The tables are constant data: no code runs
// when the object is loaded.
extern "C" {

struct CourierServiceV1 {
  const char* name;  // not NUL-terminated: use name_size
  std::size_t name_size;
  std::uint32_t idempotent;  // 0 = duplicates are suppressed by job id
  const char* schema;        // embedded payload schema (TOML), or nullptr
  std::size_t schema_size;
  // Creates the service from its [services.NAME] table. Throws (C++): whatever the
  // service's constructor throws, typically Error(kConfig).
  courier::detail::ServiceInstance* (*create)(const courier::ConfigSection* config);
};

// The first two fields keep their place in every ABI version, so a host can always tell
// which version a plugin was built for, and against which Courier.
struct CourierPluginV1 {
  std::uint32_t abi_version;    // COURIER_PLUGIN_ABI_VERSION the plugin was built with
  const char* courier_version;  // Courier version of its headers, e.g. "0.1.0"
  std::uint32_t service_count;
  const CourierServiceV1* services;
};

using CourierPluginEntryV1 = const CourierPluginV1* (*)();

}  // extern "C"

namespace courier::detail {

template <class S>
ServiceInstance* CreateService(const ConfigSection* config) {
  // Ownership crosses the plugin's C ABI as a raw pointer; the host takes it back at once.
  return std::make_unique<ServiceModel<S>>(*config).release();
}

template <class S>
constexpr CourierServiceV1 DescribeService() {
  static_assert(Service<S>,
                "a Courier service needs `static constexpr std::string_view kName`, one "
                "member function `Handle(Request [, const courier::JobContext&])`, and a "
                "constructor taking `const courier::ConfigSection&` (or none)");
  constexpr std::string_view name = S::kName;
  static_assert(!name.empty() && name.size() <= 255, "kName must be 1..255 bytes");
  std::string_view schema;
  if constexpr (HasSchema<S>) schema = S::kSchema;
  return CourierServiceV1{name.data(),
                          name.size(),
                          IsIdempotent<S>() ? 1u : 0u,
                          schema.empty() ? nullptr : schema.data(),
                          schema.size(),
                          &CreateService<S>};
}

template <class... S>
constexpr bool DistinctNames() {
  constexpr std::string_view names[] = {std::string_view(S::kName)...};
  for (std::size_t i = 0; i < sizeof...(S); ++i) {
    for (std::size_t j = i + 1; j < sizeof...(S); ++j) {
      if (names[i] == names[j]) return false;
    }
  }
  return true;
}

template <class... S>
struct PluginTable {
  static_assert(sizeof...(S) > 0, "COURIER_PLUGIN needs at least one service class");
  static_assert(DistinctNames<S...>(), "COURIER_PLUGIN: two services share a kName");
  static constexpr CourierServiceV1 kServices[] = {DescribeService<S>()...};
  static constexpr CourierPluginV1 kPlugin{kPluginAbiVersion, COURIER_VERSION_STRING,
                                           static_cast<std::uint32_t>(sizeof...(S)),
                                           kServices};
};

}  // namespace courier::detail

// Writes the plugin's entry point for the service classes listed, e.g.
//   COURIER_PLUGIN(ResizeService, ThumbnailService)
// Use it once, at namespace scope, in one source file of the shared object.
#define COURIER_PLUGIN(...)                                                          \
  extern "C" __attribute__((visibility("default"))) const CourierPluginV1*          \
  courier_plugin_v1() {                                                              \
    return &::courier::detail::PluginTable<__VA_ARGS__>::kPlugin;                    \
  }
