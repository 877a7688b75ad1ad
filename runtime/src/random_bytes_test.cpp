#include "random_bytes.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <set>

namespace courier::detail {
namespace {

using Block = std::array<std::uint8_t, 16>;

Block Draw() {
  Block block{};
  RandomBytes(block.data(), block.size());
  return block;
}

TEST(RandomBytes, ValuesAcrossManyBufferRefillsAreDistinct) {
  std::set<Block> seen;
  for (int i = 0; i < 10000; ++i) EXPECT_TRUE(seen.insert(Draw()).second);
}

TEST(RandomBytes, LargeRequestsAreFilled) {
  std::array<std::uint8_t, 4096> big{};
  RandomBytes(big.data(), big.size());
  int zero = 0;
  for (const std::uint8_t byte : big) zero += byte == 0 ? 1 : 0;
  EXPECT_LT(zero, 64);  // ~16 expected; all-zero would mean nothing was written
}

// A forked child must not hand out the bytes its parent buffered before the fork: the
// two would seal with the same nonces.
TEST(RandomBytes, AForkedChildDoesNotRepeatItsParentsBufferedBytes) {
  (void)Draw();  // the parent's buffer now holds bytes for later draws
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const Block block = Draw();
    const bool written = ::write(pipe_fds[1], block.data(), block.size()) == static_cast<ssize_t>(block.size());
    ::_exit(written ? 0 : 1);
  }
  Block from_child{};
  ASSERT_EQ(::read(pipe_fds[0], from_child.data(), from_child.size()), static_cast<ssize_t>(from_child.size()));
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  EXPECT_NE(from_child, Draw());
}

}  // namespace
}  // namespace courier::detail
