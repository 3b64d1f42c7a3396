#include "server/upload/temp_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/common/unique_fd.h"
#include "server/upload/temp_directory.h"
#include "tests/unit/scoped_test_dir.h"

namespace spillway {
namespace {

using ::spillway::testing::ScopedTestDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Plants a file as a crashed process would have left it: our name, nobody holding it.
std::string PlantLeftover(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  UniqueFd fd(::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600));
  EXPECT_TRUE(fd.valid()) << path;
  return path;
}

constexpr char kLeftoverName[] = "spillway-0123456789abcdef0123456789abcdef";

TEST(TempDirectory, OpensExistingDirectory) {
  ScopedTestDir dir;
  absl::StatusOr<TempDirectory> temp_dir = TempDirectory::Open(dir.path() + "/");
  ASSERT_TRUE(temp_dir.ok()) << temp_dir.status();
  EXPECT_EQ(temp_dir->path(), dir.path());
}

TEST(TempDirectory, EmptyMeansTmpdirVariable) {
  ScopedTestDir dir;
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  ::setenv("TMPDIR", dir.path().c_str(), 1);
  absl::StatusOr<TempDirectory> temp_dir = TempDirectory::Open("");
  if (old != nullptr) {
    ::setenv("TMPDIR", saved.c_str(), 1);
  } else {
    ::unsetenv("TMPDIR");
  }
  ASSERT_TRUE(temp_dir.ok()) << temp_dir.status();
  EXPECT_EQ(temp_dir->path(), dir.path());
}

TEST(TempDirectory, MissingDirectoryIsNamedInError) {
  ScopedTestDir dir;
  const std::string missing = dir.path() + "/no-such-dir";
  absl::StatusOr<TempDirectory> temp_dir = TempDirectory::Open(missing);
  ASSERT_FALSE(temp_dir.ok());
  EXPECT_EQ(temp_dir.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(temp_dir.status().message(), HasSubstr(missing));
}

TEST(TempDirectory, RegularFileIsRejected) {
  ScopedTestDir dir;
  const std::string file = PlantLeftover(dir.path(), "plain-file");
  absl::StatusOr<TempDirectory> temp_dir = TempDirectory::Open(file);
  ASSERT_FALSE(temp_dir.ok());
  EXPECT_EQ(temp_dir.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(temp_dir.status().message(), HasSubstr(file));
  EXPECT_THAT(temp_dir.status().message(), HasSubstr("not a directory"));
}

TEST(TempDirectory, UnwritableDirectoryIsRejected) {
  ScopedTestDir dir;
  const std::string readonly = dir.path() + "/readonly";
  ASSERT_EQ(::mkdir(readonly.c_str(), 0555), 0);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
  // Root writes anywhere, so as root the check runs in a child that drops to nobody.
  const bool as_root = ::geteuid() == 0;
  const pid_t child = as_root ? ::fork() : 0;
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (as_root && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(10);
    absl::StatusOr<TempDirectory> temp_dir = TempDirectory::Open(readonly);
    const bool good = !temp_dir.ok() &&
                      temp_dir.status().code() == absl::StatusCode::kPermissionDenied &&
                      absl::StrContains(temp_dir.status().message(), readonly) &&
                      absl::StrContains(temp_dir.status().message(), "not writable");
    if (as_root) ::_exit(good ? 0 : 11);
    EXPECT_TRUE(good) << temp_dir.status();
    return;
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: could not drop privileges, 11: wrong error";
}

TEST(TempFile, CreatedInDirectoryWithMode0600) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  absl::StatusOr<TempFile> file = temp_dir.Create();
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_THAT(file->path(), StartsWith(dir.path() + "/spillway-"));
  struct stat st;
  ASSERT_EQ(::stat(file->path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_TRUE(file->valid());
}

TEST(TempFile, NameIsPrefixAnd32HexDigits) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  TempFile file = temp_dir.Create().value();
  EXPECT_THAT(dir.List(), ElementsAre(MatchesRegex("spillway-[0-9a-f]{32}")));
}

TEST(TempFile, NamesDifferAndNeverContainUploadedFilename) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  TempFile a = temp_dir.Create().value();
  TempFile b = temp_dir.Create().value();
  EXPECT_NE(a.path(), b.path());
  // Create() takes nothing from the upload, so no filename can reach the name.
  for (const TempFile* file : {&a, &b}) {
    EXPECT_FALSE(absl::StrContains(file->path(), "report.pdf"));
  }
}

TEST(TempFile, DescriptorIsReadWriteAndCloseOnExec) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  TempFile file = temp_dir.Create().value();
  ASSERT_EQ(::write(file.fd(), "hello", 5), 5);
  char buf[5];
  ASSERT_EQ(::pread(file.fd(), buf, 5, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(::fcntl(file.fd(), F_GETFL) & O_ACCMODE, O_RDWR);
  EXPECT_TRUE(::fcntl(file.fd(), F_GETFD) & FD_CLOEXEC);
}

TEST(TempFile, HoldsExclusiveLock) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  TempFile file = temp_dir.Create().value();
  UniqueFd other(::open(file.path().c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(other.valid());
  EXPECT_NE(::flock(other.get(), LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(errno, EWOULDBLOCK);
}

TEST(TempFile, RemovedOnDestruction) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  std::string path;
  {
    TempFile file = temp_dir.Create().value();
    path = file.path();
    ASSERT_TRUE(Exists(path));
  }
  EXPECT_FALSE(Exists(path));
  EXPECT_THAT(dir.List(), IsEmpty());
}

TEST(TempFile, MoveTransfersOwnership) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  TempFile original = temp_dir.Create().value();
  const std::string path = original.path();
  const int fd = original.fd();
  {
    TempFile moved = std::move(original);
    EXPECT_EQ(moved.path(), path);
    EXPECT_EQ(moved.fd(), fd);
    EXPECT_TRUE(original.path().empty());  // NOLINT(bugprone-use-after-move)
    EXPECT_EQ(original.fd(), -1);          // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(Exists(path));
  }
  EXPECT_FALSE(Exists(path));
}

TEST(TempFile, MoveAssignmentRemovesTheReplacedFile) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  TempFile a = temp_dir.Create().value();
  TempFile b = temp_dir.Create().value();
  const std::string a_path = a.path();
  const std::string b_path = b.path();
  a = std::move(b);
  EXPECT_FALSE(Exists(a_path));
  EXPECT_TRUE(Exists(b_path));
  EXPECT_EQ(a.path(), b_path);
}

TEST(TempDirectory, SweepRemovesUnlockedLeftover) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  const std::string leftover = PlantLeftover(dir.path(), kLeftoverName);
  EXPECT_EQ(temp_dir.SweepLeftovers().value(), 1);
  EXPECT_FALSE(Exists(leftover));
}

TEST(TempDirectory, SweepKeepsFileHeldByLiveTempFile) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  TempFile live = temp_dir.Create().value();
  PlantLeftover(dir.path(), kLeftoverName);
  EXPECT_EQ(temp_dir.SweepLeftovers().value(), 1);
  EXPECT_TRUE(Exists(live.path()));
  EXPECT_THAT(dir.List(), ElementsAre(live.path().substr(dir.path().size() + 1)));
}

TEST(TempDirectory, SweepKeepsFileLockedByAnotherProcess) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  const std::string path = PlantLeftover(dir.path(), kLeftoverName);
  int locked[2];  // Child -> parent: "I hold the lock".
  int release[2];  // Parent -> child: "let go".
  ASSERT_EQ(::pipe(locked), 0);
  ASSERT_EQ(::pipe(release), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child plays a live replica holding its file until the parent says so.
    const int fd = ::open(path.c_str(), O_RDWR);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
    char byte = 'x';
    if (::write(locked[1], &byte, 1) != 1) ::_exit(1);
    if (::read(release[0], &byte, 1) != 1) ::_exit(1);
    ::_exit(0);
  }
  char byte;
  ASSERT_EQ(::read(locked[0], &byte, 1), 1);
  EXPECT_EQ(temp_dir.SweepLeftovers().value(), 0);
  EXPECT_TRUE(Exists(path));
  ASSERT_EQ(::write(release[1], &byte, 1), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  for (int fd : {locked[0], locked[1], release[0], release[1]}) ::close(fd);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // The "replica" is gone, so its file is now a leftover.
  EXPECT_EQ(temp_dir.SweepLeftovers().value(), 1);
  EXPECT_FALSE(Exists(path));
}

TEST(TempDirectory, SweepIgnoresOtherNames) {
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  PlantLeftover(dir.path(), "spillway-config.yaml");
  PlantLeftover(dir.path(), "unrelated");
  ASSERT_EQ(::mkdir((dir.path() + "/spillway-00000000000000000000000000000000").c_str(),
                    0700),
            0);
  const std::string outside = PlantLeftover(dir.path(), "target");
  ASSERT_EQ(::symlink(outside.c_str(),
                      (dir.path() + "/spillway-11111111111111111111111111111111").c_str()),
            0);
  EXPECT_EQ(temp_dir.SweepLeftovers().value(), 0);
  EXPECT_EQ(dir.List().size(), 5u);
}

TEST(TempDirectory, ConcurrentSweepNeverRemovesNewFiles) {
  // Create() and a sweep race between open() and flock(); whoever loses, a file handed
  // out by Create() must still be on disk under its name.
  ScopedTestDir dir;
  TempDirectory temp_dir = TempDirectory::Open(dir.path()).value();
  std::atomic<bool> done{false};
  std::thread sweeper([&] {
    while (!done.load()) {
      if (absl::StatusOr<int> swept = temp_dir.SweepLeftovers(); !swept.ok()) {
        ADD_FAILURE() << swept.status();
        return;
      }
    }
  });
  // No ASSERT in this loop: the sweeper thread must be joined whatever happens.
  for (int i = 0; i < 2000; ++i) {
    absl::StatusOr<TempFile> file = temp_dir.Create();
    struct stat by_fd;
    struct stat by_name;
    const bool intact = file.ok() && ::fstat(file->fd(), &by_fd) == 0 &&
                        ::stat(file->path().c_str(), &by_name) == 0 &&
                        by_fd.st_ino == by_name.st_ino;
    if (!intact) {
      ADD_FAILURE() << "file " << i << " was lost: " << file.status();
      break;
    }
  }
  done.store(true);
  sweeper.join();
  EXPECT_THAT(dir.List(), IsEmpty());
}

TEST(TempDirectory, SweepFailsForVanishedDirectory) {
  absl::StatusOr<TempDirectory> temp_dir;
  std::string path;
  {
    ScopedTestDir dir;
    path = dir.path();
    temp_dir = TempDirectory::Open(dir.path());
    ASSERT_TRUE(temp_dir.ok());
  }
  absl::StatusOr<int> swept = temp_dir->SweepLeftovers();
  ASSERT_FALSE(swept.ok());
  EXPECT_THAT(swept.status().message(), HasSubstr(path));
}

TEST(TempDirectory, CreateFailsForVanishedDirectory) {
  absl::StatusOr<TempDirectory> temp_dir;
  std::string path;
  {
    ScopedTestDir dir;
    path = dir.path();
    temp_dir = TempDirectory::Open(dir.path());
    ASSERT_TRUE(temp_dir.ok());
  }
  absl::StatusOr<TempFile> file = temp_dir->Create();
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(file.status().message(), HasSubstr(path));
}

}  // namespace
}  // namespace spillway
