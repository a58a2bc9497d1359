// Checked file access: read-only mmap, whole-file reads, and atomic writes.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "critdim/base.hpp"

namespace critdim {

static std::string errno_text() { return std::strerror(errno); }

static std::string parent_dir(const std::string& path) {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_io(path, "cannot open: " + errno_text());
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const std::string e = errno_text();
        ::close(fd);
        throw_io(path, "cannot stat: " + e);
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw_io(path, "not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
        void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            const std::string e = errno_text();
            ::close(fd);
            throw_io(path, "cannot map: " + e);
        }
        data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

std::string read_text_file(const std::string& path) {
    MappedFile f(path);
    return std::string(reinterpret_cast<const char*>(f.data()), f.size());
}

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    std::filesystem::path p(path_);
    const std::string dir = parent_dir(path_);
    tmp_path_ = dir + "/." + p.filename().string() + ".tmp.XXXXXX";
    std::vector<char> name(tmp_path_.begin(), tmp_path_.end());
    name.push_back('\0');
    fd_ = ::mkstemp(name.data());
    if (fd_ < 0) throw_io(path_, "cannot create a temporary file in '" + dir + "': " + errno_text());
    tmp_path_ = name.data();
    ::fchmod(fd_, 0644);
    buffer_.reserve(1 << 20);
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(tmp_path_.c_str());
    }
}

void AtomicFile::flush_buffer() {
    size_t off = 0;
    while (off < buffer_.size()) {
        const ssize_t n = ::write(fd_, buffer_.data() + off, buffer_.size() - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_io(path_, "write failed: " + errno_text());
        }
        off += static_cast<size_t>(n);
    }
    buffer_.clear();
}

void AtomicFile::write(const void* data, size_t n) {
    if (fd_ < 0) throw Error(ErrorKind::internal, path_, "write after commit");
    const char* p = static_cast<const char*>(data);
    if (buffer_.size() + n > buffer_.capacity()) flush_buffer();
    if (n >= buffer_.capacity()) {
        buffer_.assign(p, p + n);
        flush_buffer();
    } else {
        buffer_.insert(buffer_.end(), p, p + n);
    }
    written_ += n;
}

void AtomicFile::commit() {
    flush_buffer();
    if (::fsync(fd_) != 0) throw_io(path_, "fsync failed: " + errno_text());
    if (::close(fd_) != 0) {
        fd_ = -1;
        ::unlink(tmp_path_.c_str());
        throw_io(path_, "close failed: " + errno_text());
    }
    fd_ = -1;
    if (::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
        const std::string e = errno_text();
        ::unlink(tmp_path_.c_str());
        throw_io(path_, "cannot rename the temporary file into place: " + e);
    }
    // Make the rename itself durable.
    const std::string dir = parent_dir(path_);
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void write_file_atomic(const std::string& path, std::string_view content) {
    AtomicFile f(path);
    f.write(content);
    f.commit();
}

}  // namespace critdim
