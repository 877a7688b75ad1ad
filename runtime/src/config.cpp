#include "courier/config.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include <toml++/toml.h>

#include "courier/error.hpp"

namespace courier {
namespace {

using ReadKeys = std::map<const toml::table*, std::set<std::string, std::less<>>>;

}  // namespace

// The parsed document plus the bookkeeping every copy of every section shares. The
// document is immutable after parsing; only the read-key sets change, and getters are
// const, hence `mutable`.
struct ConfigSection::State {
  toml::table root;
  // Stands in for absent sub-tables, so a section always has a table to look in.
  toml::table empty;
  std::string source;
  mutable ReadKeys read_keys;
};

namespace {

using Milliseconds = std::chrono::milliseconds;

const toml::table& AsTable(const void* table) { return *static_cast<const toml::table*>(table); }

std::string JoinPath(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  std::string joined(path);
  joined += '.';
  joined += key;
  return joined;
}

// Article included so messages read as English: "expected an integer, got a string".
std::string_view TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
  }
  return "an unknown type";
}

std::string Quote(std::string_view text) {
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted += '"';
  quoted += text;
  quoted += '"';
  return quoted;
}

std::string FormatDouble(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

// Shows a duration in the largest unit that represents it exactly, so a range reads
// "[1ms, 1h]" rather than "[1, 3600000]".
std::string FormatDuration(Milliseconds value) {
  const std::int64_t ms = value.count();
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1'000 == 0) return std::to_string(ms / 1'000) + "s";
  return std::to_string(ms) + "ms";
}

std::string Location(std::string_view source, const toml::source_position& position) {
  std::string location(source);
  if (position) {
    location += ':' + std::to_string(position.line) + ':' + std::to_string(position.column);
  }
  return location;
}

// Where `key` is defined: the key itself (column of the name, as an editor would show),
// else its value, else the enclosing table's header, else nowhere (defaults, absent tables).
toml::source_position PositionOf(const toml::table& table, std::string_view key) {
  if (const auto it = table.find(key); it != table.end()) {
    if (it->first.source().begin) return it->first.source().begin;
    if (it->second.source().begin) return it->second.source().begin;
  }
  return table.source().begin;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions, the most
// common typo ("qeue").
std::size_t EditDistance(std::string_view a, std::string_view b) {
  const std::size_t rows = a.size() + 1;
  const std::size_t cols = b.size() + 1;
  std::vector<std::size_t> d(rows * cols);
  auto at = [cols, &d](std::size_t i, std::size_t j) -> std::size_t& { return d[i * cols + j]; };
  for (std::size_t i = 0; i < rows; ++i) at(i, 0) = i;
  for (std::size_t j = 0; j < cols; ++j) at(0, j) = j;
  for (std::size_t i = 1; i < rows; ++i) {
    for (std::size_t j = 1; j < cols; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        at(i, j) = std::min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(rows - 1, cols - 1);
}

// Parses "250ms", "3s", "1.5m", "1h". Returns std::nullopt for anything else (including
// values too large for milliseconds), leaving the message to the caller.
std::optional<Milliseconds> ParseDuration(std::string_view text) {
  struct Unit {
    std::string_view suffix;
    double ms;
  };
  // "ms" before "s"/"m" so the longest suffix wins.
  static constexpr Unit kUnits[] = {{"ms", 1.0}, {"s", 1e3}, {"m", 60e3}, {"h", 3600e3}};
  for (const Unit& unit : kUnits) {
    if (text.size() <= unit.suffix.size() || !text.ends_with(unit.suffix)) continue;
    const std::string_view number = text.substr(0, text.size() - unit.suffix.size());
    // from_chars would accept "inf"/"nan"; a duration is digits with an optional fraction.
    const bool digits_only = std::all_of(number.begin(), number.end(), [](char c) {
      return (c >= '0' && c <= '9') || c == '.' || c == '-';
    });
    if (!digits_only) return std::nullopt;
    double value = 0;
    const auto [end, ec] =
        std::from_chars(number.data(), number.data() + number.size(), value,
                        std::chars_format::fixed);
    if (ec != std::errc{} || end != number.data() + number.size()) return std::nullopt;
    const double ms = std::round(value * unit.ms);
    // 9.2e18 is the int64 limit; stay well inside it so the cast is defined.
    if (!std::isfinite(ms) || std::fabs(ms) > 9e18) return std::nullopt;
    return Milliseconds(static_cast<std::int64_t>(ms));
  }
  return std::nullopt;
}

// Marks `key` read and returns its node, or nullptr if absent. Absent keys are marked too:
// they are the candidates RejectUnknownKeys() suggests for a misspelt key.
const toml::node* MarkRead(ReadKeys& read_keys, const toml::table& table, std::string_view key) {
  read_keys[&table].emplace(key);
  return table.get(key);
}

}  // namespace

ConfigSection ConfigSection::LoadFile(const std::filesystem::path& path) {
  const std::string source = path.string();
  std::error_code status_error;
  if (std::filesystem::is_directory(path, status_error)) {
    throw Error(ErrorCode::kConfig, source + ": cannot read: is a directory");
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    // ifstream reports no reason; the underlying open() left it in errno.
    const int reason = errno != 0 ? errno : ENOENT;
    throw Error(ErrorCode::kConfig,
                source + ": cannot read: " + std::generic_category().message(reason));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error(ErrorCode::kConfig, source + ": cannot read: I/O error");
  return Parse(text.str(), source);
}

ConfigSection ConfigSection::Parse(std::string_view text, std::string source_name) {
  auto state = std::make_shared<State>();
  try {
    state->root = toml::parse(text, source_name);
  } catch (const toml::parse_error& e) {
    throw Error(ErrorCode::kConfig,
                Location(source_name, e.source().begin) + ": " + std::string(e.description()));
  }
  state->source = std::move(source_name);
  const void* root = &state->root;
  return ConfigSection(std::move(state), root, std::string());
}

ConfigSection ConfigSection::Empty(std::string source_name) {
  auto state = std::make_shared<State>();
  state->source = std::move(source_name);
  const void* root = &state->root;
  return ConfigSection(std::move(state), root, std::string());
}

ConfigSection::ConfigSection(std::shared_ptr<const State> state, const void* table,
                             std::string path)
    : state_(std::move(state)), table_(table), path_(std::move(path)) {}

ConfigSection::ConfigSection(const ConfigSection&) = default;
ConfigSection::ConfigSection(ConfigSection&&) noexcept = default;
ConfigSection& ConfigSection::operator=(const ConfigSection&) = default;
ConfigSection& ConfigSection::operator=(ConfigSection&&) noexcept = default;
ConfigSection::~ConfigSection() = default;

bool ConfigSection::Has(std::string_view key) const { return AsTable(table_).contains(key); }

std::vector<std::string> ConfigSection::Keys() const {
  // toml::table iterates in key order; the keys remember where they were parsed, so sort
  // by position to recover the file's order (stable, so sourceless keys stay sorted).
  std::vector<std::pair<toml::source_position, std::string>> keys;
  for (const auto& [key, node] : AsTable(table_)) {
    keys.emplace_back(key.source().begin, std::string(key.str()));
  }
  std::stable_sort(keys.begin(), keys.end(), [](const auto& a, const auto& b) {
    return std::pair(a.first.line, a.first.column) < std::pair(b.first.line, b.first.column);
  });
  std::vector<std::string> names;
  names.reserve(keys.size());
  for (auto& entry : keys) names.push_back(std::move(entry.second));
  return names;
}

ConfigSection ConfigSection::Section(std::string_view key) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  const std::string path = JoinPath(path_, key);
  if (node == nullptr) return ConfigSection(state_, &state_->empty, path);
  const toml::table* sub = node->as_table();
  if (sub == nullptr) {
    throw Error(ErrorCode::kConfig,
                Describe(key, std::string("expected a table, got ") +
                                  std::string(TypeName(node->type()))));
  }
  return ConfigSection(state_, sub, path);
}

std::vector<ConfigSection> ConfigSection::SectionArray(std::string_view key) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  std::vector<ConfigSection> sections;
  if (node == nullptr) return sections;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    throw Error(ErrorCode::kConfig,
                Describe(key, std::string("expected an array of tables, got ") +
                                  std::string(TypeName(node->type()))));
  }
  const std::string path = JoinPath(path_, key);
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = (*array)[i];
    const std::string element_path = path + "[" + std::to_string(i) + "]";
    const toml::table* sub = element.as_table();
    if (sub == nullptr) {
      throw Error(ErrorCode::kConfig, Location(state_->source, element.source().begin) + ": " +
                                          element_path + ": expected a table, got " +
                                          std::string(TypeName(element.type())));
    }
    sections.push_back(ConfigSection(state_, sub, element_path));
  }
  return sections;
}

std::string ConfigSection::GetString(std::string_view key, std::string_view fallback) const {
  std::optional<std::string> value = GetOptionalString(key);
  return value ? std::move(*value) : std::string(fallback);
}

std::optional<std::string> ConfigSection::GetOptionalString(std::string_view key) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  if (node == nullptr) return std::nullopt;
  const auto* value = node->as_string();
  if (value == nullptr) {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected a string, got " + std::string(TypeName(node->type()))));
  }
  return value->get();
}

std::int64_t ConfigSection::GetInt(std::string_view key, std::int64_t fallback, std::int64_t min,
                                   std::int64_t max) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  if (node == nullptr) return fallback;
  const auto* value = node->as_integer();
  if (value == nullptr) {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected an integer, got " + std::string(TypeName(node->type()))));
  }
  const std::int64_t number = value->get();
  if (number < min || number > max) {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected an integer in [" + std::to_string(min) + ", " +
                                  std::to_string(max) + "], got " + std::to_string(number)));
  }
  return number;
}

double ConfigSection::GetDouble(std::string_view key, double fallback, double min,
                                double max) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  if (node == nullptr) return fallback;
  double number = 0;
  // TOML distinguishes 1 from 1.0; people writing "ratio = 1" mean the number, so accept it.
  if (const auto* floating = node->as_floating_point()) {
    number = floating->get();
  } else if (const auto* integer = node->as_integer()) {
    number = static_cast<double>(integer->get());
  } else {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected a number, got " + std::string(TypeName(node->type()))));
  }
  // Written as a negation so NaN fails too.
  if (!(number >= min && number <= max)) {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected a number in [" + FormatDouble(min) + ", " +
                                  FormatDouble(max) + "], got " + FormatDouble(number)));
  }
  return number;
}

bool ConfigSection::GetBool(std::string_view key, bool fallback) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  if (node == nullptr) return fallback;
  const auto* value = node->as_boolean();
  if (value == nullptr) {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected a boolean, got " + std::string(TypeName(node->type()))));
  }
  return value->get();
}

std::chrono::milliseconds ConfigSection::GetDuration(std::string_view key,
                                                     std::chrono::milliseconds fallback,
                                                     std::chrono::milliseconds min,
                                                     std::chrono::milliseconds max) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  if (node == nullptr) return fallback;
  Milliseconds duration{};
  if (const auto* integer = node->as_integer()) {
    duration = Milliseconds(integer->get());
  } else if (const auto* text = node->as_string()) {
    const std::optional<Milliseconds> parsed = ParseDuration(text->get());
    if (!parsed) {
      throw Error(ErrorCode::kConfig,
                  Describe(key, "expected a duration such as \"250ms\", \"3s\", \"5m\" or "
                                "\"1h\", got " + Quote(text->get())));
    }
    duration = *parsed;
  } else {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected a duration (integer milliseconds or a string such as "
                              "\"3s\"), got " + std::string(TypeName(node->type()))));
  }
  if (duration < min || duration > max) {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected a duration in [" + FormatDuration(min) + ", " +
                                  FormatDuration(max) + "], got " + FormatDuration(duration)));
  }
  return duration;
}

namespace {

std::optional<std::uint64_t> ParseBytes(std::string_view text) {
  std::uint64_t number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (ec != std::errc{} || end == text.data()) return std::nullopt;
  std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  static constexpr std::pair<std::string_view, unsigned> kUnits[] = {
      {"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
  for (const auto& [name, shift] : kUnits) {
    if (unit != name) continue;
    if (shift != 0 && number > (UINT64_MAX >> shift)) return std::nullopt;
    return number << shift;
  }
  return std::nullopt;
}

}  // namespace

std::uint64_t ConfigSection::GetBytes(std::string_view key, std::uint64_t fallback, std::uint64_t min,
                                      std::uint64_t max) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  if (node == nullptr) return fallback;
  std::uint64_t bytes = 0;
  if (const auto* integer = node->as_integer(); integer != nullptr && integer->get() >= 0) {
    bytes = static_cast<std::uint64_t>(integer->get());
  } else if (const auto* text = node->as_string()) {
    const std::optional<std::uint64_t> parsed = ParseBytes(text->get());
    if (!parsed) {
      throw Error(ErrorCode::kConfig, Describe(key, "expected a size such as \"64KiB\", \"512MiB\" or \"2GiB\", got " +
                                                        Quote(text->get())));
    }
    bytes = *parsed;
  } else {
    throw Error(ErrorCode::kConfig, Describe(key, "expected a size (integer bytes or a string such as \"512MiB\"), got " +
                                                      std::string(TypeName(node->type()))));
  }
  if (bytes < min || bytes > max) {
    throw Error(ErrorCode::kConfig, Describe(key, "expected a size in [" + std::to_string(min) + ", " +
                                                      std::to_string(max) + "] bytes, got " + std::to_string(bytes)));
  }
  return bytes;
}

std::vector<std::string> ConfigSection::GetStringArray(std::string_view key,
                                                       std::vector<std::string> fallback) const {
  const toml::node* node = MarkRead(state_->read_keys, AsTable(table_), key);
  if (node == nullptr) return fallback;
  const toml::array* array = node->as_array();
  if (array == nullptr) {
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected an array of strings, got " +
                                  std::string(TypeName(node->type()))));
  }
  std::vector<std::string> values;
  values.reserve(array->size());
  for (std::size_t i = 0; i < array->size(); ++i) {
    const toml::node& element = (*array)[i];
    const auto* text = element.as_string();
    if (text == nullptr) {
      throw Error(ErrorCode::kConfig,
                  Location(state_->source, element.source().begin) + ": " +
                      JoinPath(path_, key) + "[" + std::to_string(i) +
                      "]: expected a string, got " + std::string(TypeName(element.type())));
    }
    values.push_back(text->get());
  }
  return values;
}

std::string ConfigSection::GetEnum(std::string_view key, std::string_view fallback,
                                   std::initializer_list<std::string_view> allowed) const {
  const std::optional<std::string> value = GetOptionalString(key);
  if (!value) return std::string(fallback);
  if (std::find(allowed.begin(), allowed.end(), *value) == allowed.end()) {
    std::string choices;
    for (const std::string_view choice : allowed) {
      if (!choices.empty()) choices += ", ";
      choices += Quote(choice);
    }
    throw Error(ErrorCode::kConfig,
                Describe(key, "expected one of " + choices + ", got " + Quote(*value)));
  }
  return *value;
}

void ConfigSection::RejectUnknownKeys() const {
  const toml::table& table = AsTable(table_);
  const auto read = state_->read_keys.find(&table);
  static const std::set<std::string, std::less<>> kNone;
  const auto& read_keys = read == state_->read_keys.end() ? kNone : read->second;
  // Keys() is in file order, so "first" means the first a reader of the file would meet.
  for (const std::string& key : Keys()) {
    if (read_keys.contains(key)) continue;
    std::string what = "unknown key";
    std::size_t best = 3;  // suggest only within edit distance 2
    std::string_view suggestion;
    for (const std::string& candidate : read_keys) {
      const std::size_t distance = EditDistance(key, candidate);
      if (distance < best) {
        best = distance;
        suggestion = candidate;
      }
    }
    if (!suggestion.empty()) what += " (did you mean " + Quote(suggestion) + "?)";
    throw Error(ErrorCode::kConfig, Describe(key, what));
  }
}

const std::string& ConfigSection::source() const { return state_->source; }

const std::string& ConfigSection::path() const { return path_; }

std::string ConfigSection::Describe(std::string_view key, std::string_view what) const {
  const toml::source_position position = PositionOf(AsTable(table_), key);
  std::string message = Location(state_->source, position);
  message += ": ";
  message += JoinPath(path_, key);
  message += ": ";
  message += what;
  return message;
}

}  // namespace courier
