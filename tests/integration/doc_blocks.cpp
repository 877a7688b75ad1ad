#include "doc_blocks.hpp"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace courier::test {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool IsFence(const std::string& line) { return line.rfind("```", 0) == 0; }

// Returns: the heading level of a Markdown heading line (1 for "# "), or 0.
std::size_t HeadingLevel(const std::string& line) {
  std::size_t level = 0;
  while (level < line.size() && line[level] == '#') ++level;
  return level > 0 && level < line.size() && line[level] == ' ' ? level : 0;
}

// Reads the block whose opening fence is lines[at]. Returns: its text; `at` ends on the
// closing fence.
std::string ReadBlock(const std::vector<std::string>& lines, std::size_t& at) {
  std::string block;
  for (++at; at < lines.size() && !IsFence(lines[at]); ++at) block += lines[at] + "\n";
  return block;
}

std::string Trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

// Returns: `line` without a `#` comment that is outside quotes.
std::string StripComment(const std::string& line) {
  char quote = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
      return line.substr(0, i);
    }
  }
  return line;
}

}  // namespace

std::map<std::string, std::string> FileBlocks(const std::string& markdown) {
  const std::vector<std::string> lines = Lines(markdown);
  std::map<std::string, std::string> files;
  for (std::size_t at = 0; at + 1 < lines.size(); ++at) {
    const std::string& line = lines[at];
    const bool names_a_file = line.size() > 3 && line.front() == '`' && line.substr(line.size() - 2) == "`:" &&
                              line.find('`', 1) == line.size() - 2;
    if (IsFence(line)) {
      (void)ReadBlock(lines, at);  // a block without a file name: skip it whole
      continue;
    }
    if (!names_a_file) continue;
    std::size_t fence = at + 1;
    while (fence < lines.size() && Trim(lines[fence]).empty()) ++fence;  // blank lines between
    if (fence == lines.size() || !IsFence(lines[fence])) continue;
    const std::string path = line.substr(1, line.size() - 3);
    at = fence;
    files[path] = ReadBlock(lines, at);
  }
  return files;
}

std::vector<std::string> SectionBlocks(const std::string& markdown, const std::string& heading,
                                       const std::string& language) {
  const std::vector<std::string> lines = Lines(markdown);
  std::vector<std::string> blocks;
  std::size_t level = 0;
  for (std::size_t at = 0; at < lines.size(); ++at) {
    const std::string& line = lines[at];
    if (IsFence(line)) {
      std::string block = ReadBlock(lines, at);
      if (level != 0 && Trim(line.substr(3)) == language) blocks.push_back(std::move(block));
      continue;
    }
    const std::size_t this_level = HeadingLevel(line);
    if (this_level == 0) continue;
    if (level != 0 && this_level <= level) break;
    if (level == 0 && line.find(heading) != std::string::npos) level = this_level;
  }
  return blocks;
}

std::vector<ShellStep> ShellSteps(const std::string& block) {
  std::vector<ShellStep> steps;
  for (const std::string& line : Lines(block)) {
    const std::string trimmed = Trim(line);
    if (trimmed.rfind("# ", 0) == 0) {
      if (!steps.empty() && !steps.back().expected) steps.back().expected = trimmed.substr(2);
      continue;
    }
    std::string command = Trim(StripComment(line));
    if (!command.empty() && command.back() == '&') command = Trim(command.substr(0, command.size() - 1));
    if (!command.empty()) steps.push_back(ShellStep{command, std::nullopt});
  }
  return steps;
}

std::string ReadText(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace courier::test
