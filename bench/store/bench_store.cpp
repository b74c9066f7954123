// Size and speed of the state store for a large state: 1,000 migrations of 3 steps each (every
// one applied, with a recorded definition) and a full history of 64 attempts; and for a more
// typical state of 20 such migrations.
//
//   bench_store [DIR]   DIR: where to commit real slot files (default: a new temp dir)
//
// Prints one line per measurement; each time is the median of several runs.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/crc32c.hpp"
#include "core/slot_files.hpp"
#include "core/state_codec.hpp"
#include "core/store.hpp"

namespace bootstate {
namespace {

State make_state(int migrations) {
  State state;
  for (int m = 0; m < migrations; ++m) {
    MigrationRecord migration;
    migration.id = fmt::format("migration-{:04}", m);
    migration.state = MigrationState::Applied;
    migration.policy = Policy::Recommended;
    migration.digest = text_digest(migration.id);
    migration.generation = "/nix/store/0123456789abcdefghijklmnopqrstuv-nixos-system-host-24.11";
    migration.attempt = 12;
    migration.backup_taken = true;
    // A typical recorded definition: three command steps with argv and a check.
    migration.definition_json = fmt::format(
        R"({{"id":"{}","description":"move data to the new layout","policy":"recommended",)"
        R"("steps":[{{"id":"s0","phase":"post-activation","kind":"command","command":)"
        R"(["/nix/store/abc-migrate/bin/migrate","--step","0"]}},{{"id":"s1","phase":)"
        R"("post-activation","kind":"command","command":["/nix/store/abc-migrate/bin/migrate",)"
        R"("--step","1"]}},{{"id":"s2","phase":"post-activation","kind":"command","command":)"
        R"(["/nix/store/abc-migrate/bin/migrate","--step","2"]}}]}})",
        migration.id);
    for (int s = 0; s < 3; ++s) {
      StepRecord step;
      step.id = fmt::format("s{}", s);
      step.state = StepState::Done;
      step.attempts = 1;
      step.exit_status = 0;
      step.message = "exit status 0";
      step.started_usec = 1'700'000'000'000'000 + m * 1000 + s;
      step.finished_usec = step.started_usec + 500;
      step.boot_id = "8c2f4a0e5d7b4c1e9f3a6b2d8e0c4f71";
      migration.steps.push_back(step);
    }
    state.migrations.push_back(std::move(migration));
  }
  for (std::uint64_t h = 0; h < kHistoryLimit; ++h) {
    Attempt attempt;
    attempt.number = h + 1;
    attempt.generation = "/nix/store/0123456789abcdefghijklmnopqrstuv-nixos-system-host-24.11";
    attempt.plan_digest = "0123456789abcdef";
    attempt.state = AttemptState::Complete;
    attempt.boot_ids = {"8c2f4a0e5d7b4c1e9f3a6b2d8e0c4f71", "1d2c3b4a596877869584a3b2c1d0e0f1"};
    attempt.entry = "nixos-generation-42";
    state.history.push_back(attempt);
  }
  state.attempt = state.history.back();
  state.last_good_generation = state.history.back().generation;
  state.next_attempt_number = kHistoryLimit + 1;
  return state;
}

// Median wall time of `runs` calls, in milliseconds.
double median_ms(int runs, const std::function<void()>& work) {
  std::vector<double> times;
  for (int run = 0; run < runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    work();
    const auto end = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

int run(int argc, char** argv) {
  const State state = make_state(1000);
  std::string payload;
  State decoded;
  const double encode = median_ms(9, [&] { payload = encode_state(state); });
  const double decode = median_ms(9, [&] { decoded = *decode_state(payload); });
  if (encode_state(decoded) != payload) {
    std::fprintf(stderr, "round trip mismatch\n");
    return 1;
  }
  std::string slot;
  const double frame = median_ms(9, [&] { slot = encode_slot(1, payload); });
  const double unframe = median_ms(9, [&] {
    if (!decode_slot(slot)) std::abort();
  });
  std::uint32_t sink = 0;
  const double crc = median_ms(9, [&] { sink ^= crc32c(slot); });

  std::printf("state: %zu migrations x 3 steps, %zu history entries\n", state.migrations.size(),
              state.history.size());
  std::printf("payload size: %zu bytes (slot %zu bytes)\n", payload.size(), slot.size());
  std::printf("encode_state: %.2f ms\n", encode);
  std::printf("decode_state: %.2f ms\n", decode);
  std::printf("encode_slot: %.2f ms, decode_slot: %.2f ms, crc32c: %.2f ms (%.0f MB/s) [%x]\n",
              frame, unframe, crc, static_cast<double>(slot.size()) / 1e3 / crc, sink & 0);

  // What the recorded definitions cost, and a state of a more typical size.
  State bare = state;
  for (MigrationRecord& migration : bare.migrations) migration.definition_json.clear();
  const std::string bare_payload = encode_state(bare);
  std::printf("payload size without definition_json: %zu bytes\n", bare_payload.size());
  const State typical = make_state(20);
  std::string typical_payload;
  const double typical_encode = median_ms(9, [&] { typical_payload = encode_state(typical); });
  const double typical_decode = median_ms(9, [&] {
    if (!decode_state(typical_payload)) std::abort();
  });
  std::printf("20 migrations: payload %zu bytes, encode %.3f ms, decode %.3f ms\n",
              typical_payload.size(), typical_encode, typical_decode);

  std::string directory;
  bool temporary = false;
  if (argc > 1) {
    directory = argv[1];
  } else {
    std::string pattern = std::filesystem::temp_directory_path() / "bench-store-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return 1;
    directory = pattern;
    temporary = true;
  }
  SlotFiles files(directory + "/bootstate");
  StateStore store(files);
  if (!store.load()) return 1;
  const double commit = median_ms(9, [&] {
    if (!store.commit(state)) std::abort();
  });
  const double load = median_ms(9, [&] {
    StateStore reader(files);
    if (!reader.load()) std::abort();
  });
  std::printf("commit (encode + frame + pwrite + fdatasync) in %s: %.2f ms\n", directory.c_str(),
              commit);
  std::printf("load (read both slots + verify + decode newest): %.2f ms\n", load);
  if (temporary) std::filesystem::remove_all(directory);
  return 0;
}

}  // namespace
}  // namespace bootstate

int main(int argc, char** argv) {
  return bootstate::run(argc, argv);
}
