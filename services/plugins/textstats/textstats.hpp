// textstats — word statistics of a UTF-8 text: word and line counts, distinct words, the
// N most frequent words and the text's SHA-256. A CPU-bound Courier service, and a
// template for one: typed request and reply structs, settings with defaults and ranges,
// a payload schema (schemas/services/textstats.toml), unit tests (textstats_test.cpp).
//
// Words are maximal runs of ASCII letters and digits, apostrophes and non-ASCII bytes
// (so UTF-8 letters stay inside words); ASCII letters are lower-cased unless
// `lowercase = false`.
//
// Settings ([services.textstats]):
//   default_top = 10        top-N when the request has no `top`, 1..100
//   max_word_bytes = 64     longer words are cut to this many bytes, 1..1024
//   lowercase = true        fold ASCII letters to lower case
//   stopwords = []          words counted but never listed in `top` (compared after folding)
//
// Thread-safety: Handle is const and keeps no state; safe from many threads.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <courier/plugin.hpp>

namespace textstats {

struct Request {
  std::string text;
  std::optional<std::uint32_t> top;
  MSGPACK_DEFINE_MAP(text, top);
};

struct WordCount {
  std::string word;
  std::uint64_t count = 0;
  MSGPACK_DEFINE_MAP(word, count);
  bool operator==(const WordCount&) const = default;
};

struct Reply {
  std::uint64_t words = 0;
  std::uint64_t unique = 0;
  std::uint64_t lines = 0;
  std::uint64_t bytes = 0;
  std::vector<WordCount> top;
  std::string sha256;  // lowercase hex
  MSGPACK_DEFINE_MAP(words, unique, lines, bytes, top, sha256);
};

class TextStats {
 public:
  static constexpr std::string_view kName = "textstats";

  // Throws: courier::Error(kConfig) for an out-of-range or unknown setting.
  explicit TextStats(const courier::ConfigSection& config);

  Reply Handle(const Request& request) const;

 private:
  const std::uint32_t default_top_;
  const std::size_t max_word_bytes_;
  const bool lowercase_;
  const std::set<std::string, std::less<>> stopwords_;
};

}  // namespace textstats
