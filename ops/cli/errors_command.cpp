#include "errors_command.hpp"

#include <time.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <future>
#include <iostream>

#include "cli_support.hpp"
#include "courier/error.hpp"
#include "courier/keyring.hpp"
#include "courier/value.hpp"

namespace courier::cli {
namespace {

using std::chrono::milliseconds;
constexpr std::string_view kSink = "courier.errors";

struct ListFlags {
  std::string service;
  std::string since;
  std::string code;
  std::size_t limit = 50;
  bool groups = false;
  bool json = false;
};

struct ShowFlags {
  std::int64_t id = 0;
  bool json = false;
  bool open = false;
};

struct ReplayFlags {
  std::int64_t id = 0;
  std::string wait = "10s";
  bool fresh = false;
  bool json = false;
};

// Parses "250ms", "90s", "1.5m", "1h", "2d", "1w" or a bare number of milliseconds.
// Throws: Error(kConfig) naming the text.
milliseconds ParseSpan(const std::string& text) {
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ms", 1.0}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}, {"d", 86400e3}, {"w", 7 * 86400e3}};
  try {
    std::size_t used = 0;
    const double amount = std::stod(text, &used);
    const std::string_view unit = std::string_view(text).substr(used);
    double scale = unit.empty() ? 1.0 : 0.0;
    for (const auto& [name, ms] : kUnits) {
      if (unit == name) scale = ms;
    }
    if (scale == 0.0 || amount < 0 || !std::isfinite(amount) || amount * scale > 1e15) throw std::invalid_argument(text);
    return milliseconds(static_cast<std::int64_t>(amount * scale));
  } catch (const std::exception&) {
    throw Error(ErrorCode::kConfig, "invalid duration \"" + text + "\" (use e.g. 500ms, 90s, 15m, 1h, 2d, 1w)");
  }
}

std::string FormatTime(std::uint64_t unix_ms, bool with_ms = false) {
  if (unix_ms == 0) return "-";
  const time_t seconds = static_cast<time_t>(unix_ms / 1000);
  tm local{};
  localtime_r(&seconds, &local);
  char buffer[64];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d %H:%M:%S", &local);
  std::string out = buffer;
  if (with_ms) {
    char fraction[8];
    std::snprintf(fraction, sizeof fraction, ".%03u", static_cast<unsigned>(unix_ms % 1000));
    out += fraction;
  }
  return out;
}

// Returns: `text` on one line, cut to at most `width` terminal columns (DisplayWidth) on a
// code point boundary, with "…".
std::string Cut(const std::string& text, std::size_t width) {
  std::string flat;
  for (const char c : text) flat += (c == '\n' || c == '\t' || c == '\r') ? ' ' : c;
  if (DisplayWidth(flat) <= width) return flat;
  const std::size_t room = width > 1 ? width - 1 : 0;  // one column for "…"
  std::size_t end = 0;
  std::size_t used = 0;
  while (end < flat.size()) {
    std::size_t next = end + 1;
    while (next < flat.size() && (static_cast<unsigned char>(flat[next]) & 0xC0) == 0x80) ++next;
    const std::size_t columns = DisplayWidth(std::string_view(flat).substr(end, next - end));
    if (used + columns > room) break;
    used += columns;
    end = next;
  }
  return flat.substr(0, end) + "…";
}

bool Bool(const Value& row, std::string_view key) {
  const Value* field = row.Find(key);
  return field != nullptr && field->type() == Value::Type::kBool && field->AsBool();
}

std::uint64_t Uint(const Value& row, std::string_view key) {
  const Value* field = row.Find(key);
  return field != nullptr && field->IsInteger() ? field->AsUint() : 0;
}

// A query for a service nobody serves would wait in the broker's queue until its deadline:
// say so at once instead.
void RequireSink(Client& client) {
  if (!client.ServiceAvailable(kSink)) {
    throw Error(ErrorCode::kNoSuchService, "no error sink is registered with the broker (start courier-error-sink)");
  }
}

Value Ask(Client& client, const Value& request, std::optional<milliseconds> deadline = std::nullopt) {
  CallOptions call;
  call.deadline = deadline;
  return client.Call(kSink, request, call);
}

// Returns: the keyring the command line names (or the default one, if it exists), or null.
std::shared_ptr<const Keyring> LoadKeyring(const ClientOptions& options) {
  if (options.keyring) return options.keyring;
  const std::filesystem::path path = options.keyring_path.empty() ? Keyring::DefaultPath() : options.keyring_path;
  std::error_code ignored;
  if (!std::filesystem::exists(path, ignored)) return nullptr;
  return std::make_shared<const Keyring>(Keyring::Load(path));
}

int RunList(const ClientOptions& options, const ListFlags& flags) {
  Value request = Value::Object({{"op", flags.groups ? "groups" : "list"}, {"limit", Value(flags.limit)}});
  if (!flags.service.empty()) request.Set("service", Value(flags.service));
  if (!flags.since.empty()) {
    const auto since = static_cast<std::uint64_t>(ParseSpan(flags.since).count());
    const std::uint64_t now = NowUnixMs();
    request.Set("since_ms", Value(now > since ? now - since : 0));
  }
  if (!flags.code.empty()) {
    const auto code = ParseErrorCode(flags.code);
    if (!code) throw Error(ErrorCode::kConfig, "unknown error code \"" + flags.code + "\" (a name like handler_error, or a number)");
    request.Set("code", Value(static_cast<std::uint64_t>(*code)));
  }
  Client client(options);
  RequireSink(client);
  const Value reply = Ask(client, request);
  if (flags.json) {
    std::cout << ToJson(reply, 2) << "\n";
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows;
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  if (flags.groups) {
    for (const Value& group : reply.At("groups").AsArray()) {
      rows.push_back({FieldText(group, "count"), FieldText(group, "service"), FieldText(group, "stage"), FieldText(group, "code_name"),
                      FormatTime(Uint(group, "last_ms")), FieldText(group, "last_id"),
                      tty ? Cut(FieldText(group, "message"), 60) : FieldText(group, "message")});
    }
    std::cout << RenderTable({"COUNT", "SERVICE", "STAGE", "CODE", "LAST SEEN", "LAST ID", "MESSAGE"}, rows);
    return kExitOk;
  }
  for (const Value& row : reply.At("reports").AsArray()) {
    std::string from = FieldText(row, "reporter");
    if (!FieldText(row, "host").empty()) from += "@" + FieldText(row, "host");
    rows.push_back({FieldText(row, "id"), FormatTime(Uint(row, "time_ms")), FieldText(row, "service"), FieldText(row, "stage"),
                    FieldText(row, "code_name"), from, FieldText(row, "occurrences"),
                    Bool(row, "dead_letter") ? "yes" : "",
                    tty ? Cut(FieldText(row, "message"), 60) : FieldText(row, "message")});
  }
  std::cout << RenderTable({"ID", "TIME", "SERVICE", "STAGE", "CODE", "FROM", "SEEN", "JOB", "MESSAGE"}, rows);
  if (const Value* stats = reply.Find("stats")) {
    std::cout << rows.size() << " shown, " << Uint(*stats, "stored") << " stored";
    if (Uint(*stats, "dropped") > 0) {
      std::cout << "; reporters lost " << Uint(*stats, "dropped") << " reports to full buffers";
    }
    std::cout << "\n";
  }
  return kExitOk;
}

void PrintShow(const Value& row) {
  auto line = [](std::string_view key, const std::string& value) {
    std::cout << "  " << key << std::string(key.size() < 12 ? 12 - key.size() : 1, ' ') << value << "\n";
  };
  std::cout << "error " << FieldText(row, "id") << "\n";
  line("time", FormatTime(Uint(row, "time_ms"), true) + " (received " + FormatTime(Uint(row, "received_ms"), true) + ")");
  line("service", FieldText(row, "service"));
  line("job", FieldText(row, "job_id") + "  attempt " + FieldText(row, "attempt") + "/" + FieldText(row, "max_attempts") +
                  (FieldText(row, "trace_id").empty() ? "" : "  trace " + FieldText(row, "trace_id")));
  line("stage", FieldText(row, "stage"));
  line("code", FieldText(row, "code_name") + " (" + FieldText(row, "code") + ")");
  line("message", FieldText(row, "message"));
  std::string origin = FieldText(row, "reporter") + " on " + FieldText(row, "host") + " pid " + FieldText(row, "pid");
  if (!FieldText(row, "instance").empty()) origin += " (" + FieldText(row, "instance") + ")";
  if (!FieldText(row, "broker").empty()) origin += " via " + FieldText(row, "broker");
  if (!FieldText(row, "sender").empty()) origin += ", transport key " + FieldText(row, "sender");
  line("reporter", origin);
  line("fingerprint", FieldText(row, "fingerprint") + " (seen " + FieldText(row, "occurrences") + " times)");
  if (const Value* job = row.Find("job"); job != nullptr && job->IsMap()) {
    if (job->Find("error") != nullptr) {
      line("dead letter", "stored, but its envelope is unusable: " + FieldText(*job, "error"));
    } else {
      const std::uint64_t deadline = Uint(*job, "deadline_ms");
      const std::uint64_t now = NowUnixMs();
      const std::string left = deadline > now ? "in " + std::to_string((deadline - now) / 1000) + "s" : "passed";
      line("dead letter", "payload " + FieldText(*job, "payload_bytes") + " bytes " +
                              (Uint(*job, "key_id") == 0 ? std::string("unsealed") : "sealed with key " + FieldText(*job, "key_id")) +
                              ", mode " + (Uint(*job, "mode") == 1 ? "send" : "call") + ", deadline " +
                              FormatTime(deadline) + " (" + left + ")");
    }
  }
  if (Uint(row, "replays") > 0) line("replays", FieldText(row, "replays") + ", last: " + FieldText(row, "last_replay"));
}

std::filesystem::path KeyringPath(const ClientOptions& options) {
  return options.keyring_path.empty() ? Keyring::DefaultPath() : options.keyring_path;
}

// Returns: the job payload a dead letter stored (still sealed as its client sent it),
// opened with the local keyring exactly as a worker opens it, and decoded.
// Throws: Error(kInvalidPayload) if the report holds no usable job; Error(kUnknownKey)
// naming the key id (and the ids the keyring holds) if the keyring lacks it; the keyring's
// kUnauthenticated if the payload does not open; Error(kConfig) if there is no keyring.
Value OpenStoredPayload(const ClientOptions& options, const Value& row, std::int64_t id) {
  const Value* job = row.Find("job");
  const Value* envelope = row.Find("envelope");
  const Value* payload = row.Find("payload");
  if (!Bool(row, "dead_letter") || job == nullptr || envelope == nullptr || payload == nullptr) {
    throw Error(ErrorCode::kInvalidPayload, "error " + std::to_string(id) +
                                                " stores no job payload: only dead letters keep one");
  }
  if (job->Find("error") != nullptr) {
    throw Error(ErrorCode::kInvalidPayload, "error " + std::to_string(id) + ": the stored envelope is unusable: " +
                                                FieldText(*job, "error"));
  }
  const std::string& envelope_bytes = envelope->AsBinary().bytes;
  const std::string& payload_bytes = payload->AsBinary().bytes;
  const auto key_id = static_cast<std::uint32_t>(Uint(*job, "key_id"));
  if (key_id == kUnsealedKeyId) return DecodeValue(payload_bytes);  // sent unsealed: nothing to open
  const std::shared_ptr<const Keyring> keyring = LoadKeyring(options);
  if (!keyring) {
    throw Error(ErrorCode::kConfig, "the payload is sealed with key id " + std::to_string(key_id) +
                                        " and there is no keyring at " + KeyringPath(options).string() +
                                        " (pass --keyring)");
  }
  if (!keyring->Holds(key_id)) {
    std::string held;
    for (const std::uint32_t own : keyring->ids()) held += (held.empty() ? "" : ", ") + std::to_string(own);
    const std::string where = options.keyring ? std::string("the local keyring") : KeyringPath(options).string();
    throw Error(ErrorCode::kUnknownKey, "the payload is sealed with key id " + std::to_string(key_id) + ", which " +
                                            where + " does not hold (it holds ids [" + held +
                                            "]); pass --keyring with a key file that has it");
  }
  return DecodeValue(keyring->Open(envelope_bytes, payload_bytes));
}

int RunShow(const ClientOptions& options, const ShowFlags& flags) {
  Client client(options);
  RequireSink(client);
  Value row = Ask(client, Value::Object({{"op", "show"}, {"id", Value(flags.id)}}));
  if (flags.open) {
    Value request = OpenStoredPayload(options, row, flags.id);
    if (!flags.json) {
      std::cout << ToJson(request) << "\n";  // the request alone: `| courier send SERVICE -` resends it
      return kExitOk;
    }
    row.Set("request", std::move(request));
  }
  if (flags.json) {
    std::cout << ToJson(row, 2) << "\n";
  } else {
    PrintShow(row);
  }
  return kExitOk;
}

// Opens a reply the sink passed back still sealed. Returns: the reply, or nullopt.
std::optional<Value> OpenReply(const Value& result, const std::shared_ptr<const Keyring>& keyring, std::string& why) {
  const Value* envelope = result.Find("reply_envelope");
  const Value* payload = result.Find("reply_payload");
  if (envelope == nullptr || payload == nullptr) return std::nullopt;
  try {
    const std::string& envelope_bytes = envelope->AsBinary().bytes;
    const std::string& payload_bytes = payload->AsBinary().bytes;
    // The envelope is a MessagePack array whose element 9 is the key id (PROTOCOL.md §4).
    const Value fields = DecodeValue(envelope_bytes);
    const std::uint64_t key_id = fields.IsArray() && fields.size() > 9 ? fields.AsArray()[9].AsUint() : 0;
    if (key_id == 0) return DecodeValue(payload_bytes);
    if (!keyring) {
      why = "it is sealed with key " + std::to_string(key_id) + " and no keyring is loaded";
      return std::nullopt;
    }
    return DecodeValue(keyring->Open(envelope_bytes, payload_bytes));
  } catch (const Error& e) {
    why = e.what();
    return std::nullopt;
  }
}

int PrintReplay(const Value& out, bool json, int status) {
  if (json) {
    std::cout << ToJson(out, 2) << "\n";
  } else {
    std::cout << "error " << FieldText(out, "id") << ": " << FieldText(out, "outcome") << " (" << FieldText(out, "how") << ", job "
              << FieldText(out, "job_id") << " of " << FieldText(out, "service") << ")\n";
    if (!FieldText(out, "message").empty()) std::cout << "  " << FieldText(out, "message") << "\n";
    if (const Value* reply = out.Find("reply")) std::cout << ToJson(*reply) << "\n";
  }
  return status;
}

int RunReplay(const ClientOptions& options, const ReplayFlags& flags) {
  const milliseconds wait = ParseSpan(flags.wait);
  Client client(options);
  RequireSink(client);
  const Value row = Ask(client, Value::Object({{"op", "show"}, {"id", Value(flags.id)}}));
  const Value* job = row.Find("job");
  if (!Bool(row, "dead_letter") || job == nullptr || job->Find("error") != nullptr) {
    throw Error(ErrorCode::kInvalidPayload, "error " + std::to_string(flags.id) +
                                                " is not a dead letter with a usable job: nothing to replay");
  }
  const std::string service = FieldText(*job, "service");
  const std::uint64_t deadline = Uint(*job, "deadline_ms");
  const std::uint32_t key_id = static_cast<std::uint32_t>(Uint(*job, "key_id"));
  const bool send_mode = Uint(*job, "mode") == 1;
  std::shared_ptr<const Keyring> keyring;
  try {
    keyring = LoadKeyring(options);
  } catch (const Error&) {
    keyring = nullptr;  // only needed to open replies or re-seal; said below when it matters
  }

  // 1. The same job, resubmitted by the sink, while its sealed deadline still allows.
  if (!flags.fresh && deadline > NowUnixMs() + 500) {
    const Value result = Ask(client, Value::Object({{"op", "replay"}, {"id", Value(flags.id)},
                                                    {"wait_ms", Value(static_cast<std::uint64_t>(wait.count()))}}),
                             wait + milliseconds(10000));
    const std::string outcome = FieldText(result, "outcome");
    if (outcome != "expired") {
      Value out = Value::Object({{"id", Value(flags.id)}, {"how", "same job, resubmitted by the error sink"},
                                 {"outcome", Value(outcome)}, {"job_id", Value(FieldText(result, "job_id"))},
                                 {"service", Value(service)}});
      int status = kExitOk;
      if (outcome == "replied") {
        std::string why;
        if (auto reply = OpenReply(result, keyring, why)) {
          out.Set("reply", std::move(*reply));
        } else {
          out.Set("message", Value("the reply arrived but cannot be opened here" + (why.empty() ? "" : ": " + why)));
        }
      } else if (outcome == "failed") {
        out.Set("code", Value(FieldText(result, "code_name")));
        out.Set("message", Value(FieldText(result, "code_name") + ": " + FieldText(result, "message")));
        const auto code = ParseErrorCode(FieldText(result, "code_name"));
        status = ExitCodeFor(code.value_or(ErrorCode::kInternal));
      } else if (outcome == "no_answer") {
        out.Set("message", Value(FieldText(result, "message")));
        status = kExitJobErrors;
      }
      return PrintReplay(out, flags.json, status);
    }
  }

  // 2. A fresh job (new id, new deadline) carrying the original payload: needs its key.
  const std::string& envelope = row.At("envelope").AsBinary().bytes;
  const std::string& payload = row.At("payload").AsBinary().bytes;
  Value request;
  if (key_id == 0) {
    request = DecodeValue(payload);
  } else {
    if (!keyring || !keyring->Holds(key_id)) {
      throw Error(ErrorCode::kUnknownKey,
                  "the job's deadline (" + FormatTime(deadline) + ") has passed, so only a fresh job can replay it, "
                  "and that needs payload key " + std::to_string(key_id) + ", which this keyring does not hold "
                  "(pass --keyring)");
    }
    request = DecodeValue(keyring->Open(envelope, payload));
  }
  std::promise<Result> done;
  auto answered = done.get_future();
  auto deliver = [&done](Result result) { done.set_value(std::move(result)); };
  if (send_mode) {
    client.Send(service, std::move(request), deliver);
  } else {
    client.Submit(service, std::move(request), deliver);
  }
  Result result = answered.get();
  Value out = Value::Object({{"id", Value(flags.id)}, {"how", "fresh job with the original payload"},
                             {"job_id", Value(result.job_id().Hex())}, {"service", Value(service)}});
  int status = kExitOk;
  std::string outcome;
  if (const Error* error = result.error()) {
    outcome = "failed";
    out.Set("code", Value(std::string(ToString(error->code()))));
    out.Set("message", Value(std::string(ToString(error->code())) + ": " + error->what()));
    status = ExitCodeFor(error->code());
  } else {
    outcome = send_mode ? "accepted" : "replied";
    if (!send_mode) out.Set("reply", result.value());
  }
  out.Set("outcome", Value(outcome));
  try {
    Ask(client, Value::Object({{"op", "replayed"}, {"id", Value(flags.id)},
                               {"outcome", Value("fresh job " + result.job_id().Hex() + ": " + outcome)}}));
  } catch (const Error& e) {
    std::cerr << "courier: the replay was not recorded in the error sink: " << e.what() << "\n";
  }
  return PrintReplay(out, flags.json, status);
}

}  // namespace

CommandRunner AddErrorsCommand(CLI::App& app, std::function<ClientOptions()> client_options) {
  CLI::App* errors = app.add_subcommand("errors", "list, show and replay what the error sink (courier.errors) stored");
  errors->require_subcommand(1);

  auto list_flags = std::make_shared<ListFlags>();
  CLI::App* list = errors->add_subcommand("list", "recent error reports, newest first");
  list->add_option("--service,-s", list_flags->service, "only this service");
  list->add_option("--since", list_flags->since, "only failures this recent: 90s, 15m, 1h, 2d, 1w");
  list->add_option("--code", list_flags->code, "only this error code (name or number)");
  list->add_option("--limit,-n", list_flags->limit, "at most this many (default 50, at most 1000)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  list->add_flag("--groups", list_flags->groups, "group identical failures (by fingerprint) with counts");
  list->add_flag("--json", list_flags->json, "print the sink's answer as JSON");

  auto show_flags = std::make_shared<ShowFlags>();
  CLI::App* show = errors->add_subcommand("show", "everything stored about one error report");
  show->add_option("id", show_flags->id, "report id (from errors list)")->required()->check(CLI::PositiveNumber);
  show->add_flag("--json", show_flags->json, "print JSON (envelope and payload as {\"$bin\": base64})");
  show->add_flag("--open", show_flags->open,
                 "open a dead letter's stored payload with the local keyring and print the request as JSON "
                 "(with --json: added to the report as \"request\")");

  auto replay_flags = std::make_shared<ReplayFlags>();
  CLI::App* replay = errors->add_subcommand(
      "replay", "resubmit a dead-lettered job: the same job through the sink before its deadline, "
                "else a fresh job with the original payload (needs its key)");
  replay->add_option("id", replay_flags->id, "report id of a dead letter")->required()->check(CLI::PositiveNumber);
  replay->add_option("--wait", replay_flags->wait, "how long to wait for the replayed job's answer (default 10s)");
  replay->add_flag("--fresh", replay_flags->fresh, "always submit a fresh job (needs the payload key)");
  replay->add_flag("--json", replay_flags->json, "print JSON");

  return [=]() -> std::optional<int> {
    if (!errors->parsed()) return std::nullopt;
    const ClientOptions options = client_options();
    if (list->parsed()) return RunList(options, *list_flags);
    if (show->parsed()) return RunShow(options, *show_flags);
    if (replay->parsed()) return RunReplay(options, *replay_flags);
    return kExitUsage;
  };
}

}  // namespace courier::cli
