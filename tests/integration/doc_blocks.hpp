// doc_blocks.hpp — the code of a Markdown document, as the install test builds and runs it,
// so what README.md and WRITING_PLUGINS.md show is what is tested.
//
// Two conventions in the documents:
//   - a line holding only `PATH`: followed (blank lines aside) by a fenced block: the block
//     is the file PATH;
//   - the fenced blocks of a section (the lines under a heading) are its steps: shell lines
//     are commands, and a line `# TEXT` right after a command is that command's output.
// Pure functions; thread-safe.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace courier::test {

// Returns: PATH → contents of every file block of `markdown`.
std::map<std::string, std::string> FileBlocks(const std::string& markdown);

// Returns: the fenced blocks in `language` (```sh) of the section whose heading line
// contains `heading` (up to the next heading of the same or a higher level), in order.
std::vector<std::string> SectionBlocks(const std::string& markdown, const std::string& heading,
                                       const std::string& language);

struct ShellStep {
  std::string command;                  // without its trailing comment and `&`
  std::optional<std::string> expected;  // the `# TEXT` line after it
};

// Returns: the commands of a shell block with their expected outputs.
std::vector<ShellStep> ShellSteps(const std::string& block);

// Returns: the file's text. Throws std::runtime_error if it cannot be read.
std::string ReadText(const std::filesystem::path& file);

}  // namespace courier::test
