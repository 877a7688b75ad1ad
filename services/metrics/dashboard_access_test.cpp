#include "dashboard_access.hpp"

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>

#include <fstream>

#include "courier/error.hpp"

namespace courier::metrics {
namespace {

namespace fs = std::filesystem;

class TokenFile {
 public:
  TokenFile(const std::string& text, fs::perms mode) {
    path_ = fs::temp_directory_path() / ("courier-dashboard-token-" + std::to_string(::getpid()) + "-" + std::to_string(++count_));
    std::ofstream(path_) << text;
    fs::permissions(path_, mode);
  }
  ~TokenFile() { fs::remove(path_); }
  const fs::path& path() const { return path_; }

 private:
  static inline int count_ = 0;
  fs::path path_;
};

httplib::Request Request(const std::string& host, std::initializer_list<std::pair<std::string, std::string>> headers = {}) {
  httplib::Request request;
  request.set_header("Host", host);
  for (const auto& [name, value] : headers) request.set_header(name, value);
  return request;
}

TEST(DashboardAccessTest, LoopbackNamesAreRecognised) {
  for (const char* host : {"127.0.0.1", "127.3.2.1", "localhost", "::1", "[::1]", "app.localhost"}) {
    EXPECT_TRUE(IsLoopbackHost(host)) << host;
  }
  for (const char* host : {"0.0.0.0", "10.0.0.5", "::", "example.com", "localhost.example.com", "128.0.0.1", ""}) {
    EXPECT_FALSE(IsLoopbackHost(host)) << host;
  }
}

TEST(DashboardAccessTest, TheTokenFileMustBePrivateAndLongEnough) {
  const TokenFile good("  0123456789abcdef0123\n", fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(LoadTokenFile(good.path()), "0123456789abcdef0123");
  const TokenFile shared("0123456789abcdef0123", fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  EXPECT_THROW(LoadTokenFile(shared.path()), Error);
  const TokenFile short_one("abc", fs::perms::owner_read);
  EXPECT_THROW(LoadTokenFile(short_one.path()), Error);
  EXPECT_THROW(LoadTokenFile("/nonexistent/token"), Error);
}

TEST(DashboardAccessTest, TokensCompareWhole) {
  EXPECT_TRUE(SameToken("abcdef", "abcdef"));
  EXPECT_FALSE(SameToken("abcdef", "abcdeg"));
  EXPECT_FALSE(SameToken("abcdef", "abcde"));
  EXPECT_FALSE(SameToken("", "a"));
}

TEST(DashboardAccessTest, BeyondLoopbackATokenFileIsRequired) {
  EXPECT_THROW(DashboardAccess(DashboardAccess::Options{"0.0.0.0", {}}), Error);
  EXPECT_THROW(DashboardAccess(DashboardAccess::Options{"10.1.2.3", {}}), Error);
  EXPECT_NO_THROW(DashboardAccess(DashboardAccess::Options{"127.0.0.1", {}}));
}

TEST(DashboardAccessTest, OnLoopbackReadsAreOpenButOnlyUnderALoopbackHostName) {
  const DashboardAccess access(DashboardAccess::Options{"127.0.0.1", {}});
  EXPECT_FALSE(access.login_required());
  EXPECT_EQ(access.token().size(), 64u);  // random, per process
  EXPECT_FALSE(access.CheckRead(Request("127.0.0.1:9464")));
  EXPECT_FALSE(access.CheckRead(Request("localhost:9464")));
  EXPECT_FALSE(access.CheckRead(Request("[::1]:9464")));
  // A DNS name rebound to 127.0.0.1 by another site.
  const auto rebound = access.CheckRead(Request("evil.example:9464"));
  ASSERT_TRUE(rebound);
  EXPECT_EQ(rebound->status, 403);
  EXPECT_TRUE(access.CheckRead(httplib::Request()));  // no Host at all
}

TEST(DashboardAccessTest, AWriteNeedsTheTokenHeaderAndTheSameOrigin) {
  const DashboardAccess access(DashboardAccess::Options{"127.0.0.1", {}});
  const std::string host = "127.0.0.1:9464";
  const std::string token = access.token();
  EXPECT_FALSE(access.CheckWrite(Request(host, {{"Origin", "http://" + host}, {"X-Courier-Token", token}})));
  EXPECT_FALSE(access.CheckWrite(Request(host, {{"Sec-Fetch-Site", "same-origin"}, {"X-Courier-Token", token}})));
  // Cross-site: another origin, or no origin information at all.
  EXPECT_TRUE(access.CheckWrite(Request(host, {{"Origin", "http://evil.example"}, {"X-Courier-Token", token}})));
  EXPECT_TRUE(access.CheckWrite(Request(host, {{"Origin", "http://127.0.0.1:9999"}, {"X-Courier-Token", token}})));
  EXPECT_TRUE(access.CheckWrite(Request(host, {{"Sec-Fetch-Site", "cross-site"}, {"X-Courier-Token", token}})));
  EXPECT_TRUE(access.CheckWrite(Request(host, {{"X-Courier-Token", token}})));
  // The right origin without the token, or with a wrong one.
  EXPECT_TRUE(access.CheckWrite(Request(host, {{"Origin", "http://" + host}})));
  const auto wrong = access.CheckWrite(Request(host, {{"Origin", "http://" + host}, {"X-Courier-Token", token + "x"}}));
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 403);
}

TEST(DashboardAccessTest, WithATokenFileEveryRequestNeedsTheToken) {
  const TokenFile file("s3cret-token-0123456789", fs::perms::owner_read | fs::perms::owner_write);
  const DashboardAccess access(DashboardAccess::Options{"0.0.0.0", file.path()});
  EXPECT_TRUE(access.login_required());
  const std::string host = "10.0.0.5:9464";
  const auto anonymous = access.CheckRead(Request(host));
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_FALSE(access.CheckRead(Request(host, {{"Cookie", "a=b; courier_token=s3cret-token-0123456789"}})));
  EXPECT_FALSE(access.CheckRead(Request(host, {{"Authorization", "Bearer s3cret-token-0123456789"}})));
  EXPECT_TRUE(access.CheckRead(Request(host, {{"Cookie", "courier_token=guess"}})));
  EXPECT_TRUE(access.CheckRead(Request(host, {{"Authorization", "Bearer guess"}})));
  EXPECT_TRUE(access.Accepts("s3cret-token-0123456789"));
  // A write: logged in, same origin, token header.
  EXPECT_FALSE(access.CheckWrite(Request(host, {{"Cookie", "courier_token=s3cret-token-0123456789"},
                                                {"Origin", "http://" + host},
                                                {"X-Courier-Token", "s3cret-token-0123456789"}})));
  EXPECT_TRUE(access.CheckWrite(Request(host, {{"Origin", "http://" + host}, {"X-Courier-Token", "s3cret-token-0123456789"}})));
}

}  // namespace
}  // namespace courier::metrics
