#include "textstats.hpp"

#include <sodium.h>

#include <algorithm>
#include <unordered_map>

namespace textstats {
namespace {

bool IsWordByte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '\'' ||
         c >= 0x80;
}

std::string Sha256Hex(std::string_view text) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(text.data()), text.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex, crypto_hash_sha256_BYTES * 2);
}

std::set<std::string, std::less<>> ReadStopwords(const courier::ConfigSection& config, bool lowercase) {
  std::set<std::string, std::less<>> words;
  for (std::string word : config.GetStringArray("stopwords", {})) {
    if (lowercase) {
      for (char& c : word) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    words.insert(std::move(word));
  }
  return words;
}

}  // namespace

TextStats::TextStats(const courier::ConfigSection& config)
    : default_top_(static_cast<std::uint32_t>(config.GetInt("default_top", 10, 1, 100))),
      max_word_bytes_(static_cast<std::size_t>(config.GetInt("max_word_bytes", 64, 1, 1024))),
      lowercase_(config.GetBool("lowercase", true)),
      stopwords_(ReadStopwords(config, lowercase_)) {
  config.RejectUnknownKeys();
  if (sodium_init() < 0) throw courier::Error(courier::ErrorCode::kInternal, "libsodium failed to initialise");
}

Reply TextStats::Handle(const Request& request) const {
  const std::string_view text = request.text;
  Reply reply;
  reply.bytes = text.size();
  reply.lines = text.empty() ? 0 : static_cast<std::uint64_t>(std::count(text.begin(), text.end(), '\n')) +
                                       (text.back() == '\n' ? 0 : 1);

  std::unordered_map<std::string, std::uint64_t> counts;
  std::string word;
  auto flush = [&] {
    if (word.empty()) return;
    ++reply.words;
    ++counts[word];
    word.clear();
  };
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (!IsWordByte(c)) {
      flush();
      continue;
    }
    if (word.size() < max_word_bytes_) {
      word.push_back(lowercase_ && c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : ch);
    }
  }
  flush();
  reply.unique = counts.size();

  // Top N: most frequent first, ties alphabetical, stopwords left out.
  const std::size_t top = request.top.value_or(default_top_);
  std::vector<WordCount> ranked;
  ranked.reserve(counts.size());
  for (auto& [w, n] : counts) {
    if (stopwords_.count(w) == 0) ranked.push_back({w, n});
  }
  const auto better = [](const WordCount& a, const WordCount& b) {
    return a.count != b.count ? a.count > b.count : a.word < b.word;
  };
  const std::size_t keep = std::min(top, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(keep), ranked.end(), better);
  ranked.resize(keep);
  reply.top = std::move(ranked);
  reply.sha256 = Sha256Hex(text);
  return reply;
}

}  // namespace textstats
