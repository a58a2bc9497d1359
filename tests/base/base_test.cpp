#include "critdim/base.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "test_util.hpp"

namespace critdim {

TEST(Npy, RoundTrip) {
    const std::string path = test::temp_dir("npy") + "/a.npy";
    std::vector<float> v(2 * 3 * 5);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i) * 0.5f - 3.0f;
    const int64_t shape[] = {2, 3, 5};
    write_npy(path, v.data(), shape);
    NpyArray a = read_npy(path);
    ASSERT_EQ(a.shape, (std::vector<int64_t>{2, 3, 5}));
    EXPECT_EQ(a.data, v);
    // The header is padded so that the data starts at a multiple of 64 bytes.
    EXPECT_EQ(std::filesystem::file_size(path), 128u + v.size() * 4);
}

TEST(Npy, OneDimensionalShapeHasTrailingComma) {
    const std::string path = test::temp_dir("npy") + "/b.npy";
    const float v[] = {1, 2, 3};
    const int64_t shape[] = {3};
    write_npy(path, v, shape);
    const std::string text = read_text_file(path);
    EXPECT_NE(text.find("'shape': (3,)"), std::string::npos);
}

TEST(Npy, RejectsNonNpy) {
    const std::string path = test::temp_dir("npy") + "/bad.npy";
    write_file_atomic(path, "not numpy at all");
    try {
        read_npy(path);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::input);
        EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    }
}

TEST(AtomicFile, UncommittedLeavesOldContent) {
    const std::string dir = test::temp_dir("atomic");
    const std::string path = dir + "/f.txt";
    write_file_atomic(path, "old");
    {
        AtomicFile f(path);
        f.write("new content");
    }  // destroyed without commit
    EXPECT_EQ(read_text_file(path), "old");
    size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir)) ++n;
    EXPECT_EQ(n, 1u) << "the temporary file must be removed";
    write_file_atomic(path, "new");
    EXPECT_EQ(read_text_file(path), "new");
}

TEST(AtomicFile, MissingFolderIsIoError) {
    try {
        write_file_atomic("/nonexistent-folder-critdim/x", "a");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::io);
        EXPECT_EQ(exit_code(e.kind()), 5);
    }
}

TEST(MappedFile, MissingFileNamesPath) {
    try {
        MappedFile f("/nonexistent/critdim.gguf");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/critdim.gguf"), std::string::npos);
    }
}

TEST(ThreadPool, RunsEveryThreadAndPartitions) {
    for (int n : {1, 2, 3, 5}) {
        ThreadPool pool(n);
        for (int rep = 0; rep < 200; ++rep) {
            std::vector<int> hits(1000, 0);
            pool.parallel_for(1000, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) hits[i]++;
            });
            for (int h : hits) ASSERT_EQ(h, 1);
        }
        std::atomic<int> count{0};
        pool.run([&](int, int nth) {
            EXPECT_EQ(nth, n);
            count++;
        });
        EXPECT_EQ(count.load(), n);
    }
}

// Chunked jobs and whole-pool jobs back to back: every item exactly once, ith in range, and
// per-thread scratch never shared by two threads at once.
TEST(ThreadPool, ChunkedAndWholePoolJobsInterleave) {
    for (int n : {2, 3, 5}) {
        ThreadPool pool(n);
        std::vector<std::atomic<int>> busy(static_cast<size_t>(n));
        for (int rep = 0; rep < 300; ++rep) {
            const int64_t items = 1 + rep % 97;
            std::vector<int> hits(static_cast<size_t>(items), 0);
            std::atomic<bool> bad{false};
            pool.parallel_for_thread(
                items,
                [&](int64_t b, int64_t e, int ith) {
                    if (ith < 0 || ith >= n || busy[static_cast<size_t>(ith)].fetch_add(1) != 0) bad = true;
                    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
                    busy[static_cast<size_t>(ith)].fetch_sub(1);
                },
                int64_t{1} << 20);
            ASSERT_FALSE(bad.load());
            for (int h : hits) ASSERT_EQ(h, 1);
            std::atomic<int> count{0};
            pool.run([&](int, int) { count++; });
            ASSERT_EQ(count.load(), n);
        }
    }
}

TEST(ThreadPool, ChunkedJobsPropagateExceptions) {
    ThreadPool pool(3);
    EXPECT_THROW(pool.parallel_for(
                     100,
                     [](int64_t b, int64_t) {
                         if (b >= 50) throw std::runtime_error("chunk");
                     },
                     int64_t{1} << 20),
                 std::runtime_error);
    std::atomic<int64_t> sum{0};
    pool.parallel_for(
        100, [&](int64_t b, int64_t e) { sum += e - b; }, int64_t{1} << 20);
    EXPECT_EQ(sum.load(), 100);
}

TEST(ThreadPool, PropagatesExceptions) {
    ThreadPool pool(2);
    EXPECT_THROW(pool.run([](int ith, int) {
        if (ith == 1) throw std::runtime_error("boom");
    }),
                 std::runtime_error);
    int ok = 0;
    pool.run([&](int ith, int) {
        if (ith == 0) ok = 1;
    });
    EXPECT_EQ(ok, 1);
}

TEST(TensorTypes, CatalogueKnowsSizes) {
    EXPECT_EQ(tensor_row_bytes(TensorType::Q8_0, 64), 68u);
    EXPECT_EQ(tensor_row_bytes(TensorType::Q4_K, 512), 288u);
    EXPECT_EQ(tensor_row_bytes(TensorType::Q6_K, 256), 210u);
    EXPECT_EQ(tensor_row_bytes(TensorType::BF16, 3), 6u);
    ASSERT_NE(tensor_type_by_name("q5_0"), nullptr);
    EXPECT_FALSE(tensor_type_by_name("q5_0")->supported);
    EXPECT_EQ(tensor_type_info(999u), nullptr);
}

}  // namespace critdim
