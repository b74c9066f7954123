// The phase runner with --jobs above 1 (issue #15 item 4), over the strict fakes: steps of
// independent migrations overlap in time, every commit is made on the runner's thread one after
// the other, a reboot or a failure lets the running ones finish, and a power cut at any commit
// while two run applies every step exactly once.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "core/engine.hpp"
#include "tests/support/test_machine.hpp"

using namespace bootstate;
using namespace bootstate::testing;

namespace {

// Watches which steps run at the same time: every step waits (at most `patience`) until
// `together` steps run, so that steps able to run at once are seen to do so.
class Overlap {
 public:
  Overlap(std::size_t together, std::chrono::milliseconds patience)
      : together_(together), patience_(patience) {}

  void enter(const std::string& key) {
    std::unique_lock lock(mutex_);
    started.push_back(key);
    ++running_;
    most = std::max(most, running_);
    changed_.notify_all();
    changed_.wait_for(lock, patience_, [this] { return running_ >= together_ || released_; });
    // Once `together` ran at once, the rest do not wait: the count drops as they end.
    released_ = true;
    changed_.notify_all();
    if (hold_) hold_(key, lock);
    --running_;
    ended.push_back(key);
    changed_.notify_all();
  }

  // Runs while a step is held inside enter(), with the lock: keeps it running until step `key`
  // ended, and then a while longer, so that the runner has committed the end of `key` before
  // this one ends (it takes microseconds; the margin is for a loaded machine).
  void wait_until_ended(std::unique_lock<std::mutex>& lock, const std::string& key) {
    changed_.wait_for(lock, patience_,
                      [&] { return std::find(ended.begin(), ended.end(), key) != ended.end(); });
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    lock.lock();
  }
  std::function<void(const std::string&, std::unique_lock<std::mutex>&)> hold_;

  std::size_t most = 0;
  std::vector<std::string> started;
  std::vector<std::string> ended;

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t together_;
  std::chrono::milliseconds patience_;
  std::size_t running_ = 0;
  bool released_ = false;
};

// Records on which thread each commit ran and whether two ever overlapped.
class WatchedStore final : public StateAccess {
 public:
  explicit WatchedStore(StateAccess& inner) : inner_(inner) {}
  Expected<LoadResult> load() override { return inner_.load(); }
  Expected<void> commit(const State& state) override {
    if (inside_.fetch_add(1) != 0) overlapped = true;
    threads.push_back(std::this_thread::get_id());
    auto done = inner_.commit(state);
    inside_.fetch_sub(1);
    return done;
  }
  std::vector<std::thread::id> threads;
  bool overlapped = false;

 private:
  StateAccess& inner_;
  std::atomic<int> inside_{0};
};

std::string independent(int count, const std::string& policy = "required") {
  std::string migrations;
  for (int i = 0; i < count; ++i) {
    if (i > 0) migrations += ",";
    migrations += migration("m" + std::to_string(i), command_step("s"), "", policy);
  }
  return migrations;
}

const std::string kCheck = R"(,"check":["/bin/true"])";

}  // namespace

TEST_CASE("parallel runner: two independent steps run at the same time with --jobs 2") {
  TestMachine machine;
  machine.jobs = 2;
  Overlap overlap(2, std::chrono::seconds(5));
  machine.executor.on_run = [&](const std::string& key) { overlap.enter(key); };
  machine.boot_plan(plan_json(kGen2, independent(2)));
  const auto begun = std::chrono::steady_clock::now();
  CHECK(machine.boot().exit == PhaseExit::Ok);
  // One at a time, the first would have waited out its 5 s for a second that never came.
  CHECK(std::chrono::steady_clock::now() - begun < std::chrono::seconds(4));
  CHECK(overlap.most == 2);
  CHECK(machine.state().attempt->state == AttemptState::Complete);
}

TEST_CASE("parallel runner: --jobs 1 runs one step at a time, as before") {
  TestMachine machine;
  Overlap overlap(2, std::chrono::milliseconds(50));
  machine.executor.on_run = [&](const std::string& key) { overlap.enter(key); };
  machine.boot_plan(plan_json(kGen2, independent(3)));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(overlap.most == 1);
  CHECK(machine.executor.calls() == std::vector<std::string>{"run:m0/s", "run:m1/s", "run:m2/s"});
}

TEST_CASE("parallel runner: at most --jobs steps at once, and the rest as places free up") {
  TestMachine machine;
  machine.jobs = 3;
  Overlap overlap(3, std::chrono::seconds(5));
  machine.executor.on_run = [&](const std::string& key) { overlap.enter(key); };
  machine.boot_plan(plan_json(kGen2, independent(7)));
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(overlap.most == 3);
  CHECK(overlap.started.size() == 7);
  for (int i = 0; i < 7; ++i) CHECK(machine.executor.applied("m" + std::to_string(i) + "/s") == 1);
}

TEST_CASE("parallel runner: commits are made one after the other, on the runner's thread") {
  auto run = [](std::size_t jobs, bool& overlapped, std::size_t& commits) {
    FakeSlotStorage slots;
    StateStore durable(slots);
    StoreAccess store(durable);
    WatchedStore watched(store);
    FakeBootLoader loader = FakeBootLoader::counting("entry-2", 3, 0);
    FakeExecutor executor;
    Overlap overlap(jobs, std::chrono::seconds(5));
    executor.on_run = [&](const std::string& key) { overlap.enter(key); };
    PhaseEffects effects;
    effects.store = &watched;
    effects.boot_loader = &loader;
    effects.executors = {{StepKind::Command, &executor}};
    effects.jobs = jobs;
    Plan plan = must_parse(plan_json(kGen2, independent(4)));
    auto result = run_phase(Phase::PostActivation, plan, BootFacts{"boot-1", kGen2, 1}, effects);
    REQUIRE(result.has_value());
    CHECK(result->exit == PhaseExit::Ok);
    CHECK(overlap.most == jobs);
    for (std::thread::id thread : watched.threads) CHECK(thread == std::this_thread::get_id());
    overlapped = watched.overlapped;
    commits = static_cast<std::size_t>(slots.writes());
    CHECK(commits == watched.threads.size());
  };
  bool overlapped = true;
  std::size_t serial = 0;
  run(1, overlapped, serial);
  CHECK_FALSE(overlapped);
  std::size_t parallel = 0;
  run(4, overlapped, parallel);
  CHECK_FALSE(overlapped);
  // One commit (one slot write) per start and per end, with four at once as with one.
  CHECK(parallel == serial);
}

TEST_CASE("parallel runner: a reboot request lets the independent migrations finish first") {
  TestMachine machine;
  machine.jobs = 2;
  Overlap overlap(2, std::chrono::seconds(5));
  // m1 keeps running until the rebooting one has ended.
  overlap.hold_ = [&](const std::string& key, std::unique_lock<std::mutex>& lock) {
    if (key == "m1/s") overlap.wait_until_ended(lock, "m0/s");
  };
  machine.executor.on_run = [&](const std::string& key) { overlap.enter(key); };
  machine.boot_plan(
      plan_json(kGen2, migration("m0", command_step("s", "post-activation", R"(,"reboot":true)") +
                                           "," + command_step("t")) +
                           "," + migration("m1", command_step("s")) + "," +
                           migration("m2", command_step("s")) + "," +
                           migration("after-m0", command_step("s"), R"(,"after":["m0"])")));
  CHECK(machine.boot().exit == PhaseExit::RebootRequired);
  const State state = machine.state();
  REQUIRE(state.find("m0") != nullptr);
  REQUIRE(state.find("m1") != nullptr);
  REQUIRE(state.find("m2") != nullptr);
  CHECK(state.find("m0")->steps.size() == 1);                 // its next step after the reboot
  CHECK(state.find("m1")->state == MigrationState::Applied);  // ran beside it, recorded
  CHECK(state.find("m2")->state == MigrationState::Applied);  // independent: before the reboot
  CHECK(state.find("after-m0") == nullptr);
  CHECK(machine.executor.applied("m0/t") == 0);
  machine.reboot();
  machine.executor.on_run = nullptr;
  CHECK(machine.boot().exit == PhaseExit::Ok);
  CHECK(machine.executor.applied("m0/t") == 1);
  CHECK(machine.executor.applied("after-m0/s") == 1);
  CHECK(machine.executor.applied("m2/s") == 1);
}

TEST_CASE("parallel runner: a failed required step lets the running one finish, then fails") {
  TestMachine machine;
  machine.jobs = 2;
  Overlap overlap(2, std::chrono::seconds(5));
  overlap.hold_ = [&](const std::string& key, std::unique_lock<std::mutex>& lock) {
    if (key == "m1/s") overlap.wait_until_ended(lock, "m0/s");
  };
  machine.executor.on_run = [&](const std::string& key) { overlap.enter(key); };
  machine.executor.fail("m0/s", "exit status 1");
  machine.boot_plan(plan_json(kGen2, independent(3)));
  CHECK(machine.boot().exit == PhaseExit::Failed);
  const State state = machine.state();
  CHECK(state.attempt->state == AttemptState::Failed);
  REQUIRE(state.find("m0") != nullptr);
  REQUIRE(state.find("m1") != nullptr);
  CHECK(state.find("m0")->state == MigrationState::Failed);
  CHECK(state.find("m1")->steps.at(0).state == StepState::Done);  // recorded, not left running
  CHECK(state.find("m2") == nullptr);
  CHECK(machine.loader.calls().back() == "mark_bad");
}

namespace {

// Boots until a boot ends Ok (power cuts: the run errors out at the cut write); at most `limit`.
void boot_to_completion(TestMachine& machine, int limit) {
  for (int i = 0; i < limit; ++i) {
    machine.reboot();
    bool ok = true;
    for (Phase phase : kAllPhases) {
      auto result = machine.try_run(phase);
      if (!result || result->exit != PhaseExit::Ok) {
        ok = false;
        break;
      }
    }
    if (ok) return;
  }
  FAIL("no complete boot in " << limit << " boots");
}

}  // namespace

TEST_CASE("parallel runner: a power cut at each commit while two run: every step exactly once") {
  // Two migrations of two steps each (every step has a check, none is idempotent), and one
  // after both: the cut lands while both first steps run, between their ends, and later.
  const std::string plan = plan_json(
      kGen2,
      migration("a", command_step("one", "post-activation", kCheck) + "," +
                         command_step("two", "post-activation", kCheck)) +
          "," +
          migration("b", command_step("one", "post-activation", kCheck) + "," +
                             command_step("two", "post-activation", kCheck)) +
          "," +
          migration("c", command_step("one", "post-activation", kCheck), R"(,"after":["a","b"])"));
  const std::vector<std::string> steps{"a/one", "a/two", "b/one", "b/two", "c/one"};

  int writes = 0;
  {
    TestMachine uncut;
    uncut.jobs = 2;
    uncut.boot_plan(plan);
    REQUIRE(uncut.boot().exit == PhaseExit::Ok);
    writes = uncut.slots.writes();
  }
  REQUIRE(writes >= 11);  // reconcile, 5 starts, 5 ends, the completion
  int cases = 0;
  for (int point = 1; point <= writes; ++point) {
    for (bool torn : {false, true}) {
      CAPTURE(point);
      CAPTURE(torn);
      TestMachine machine;
      machine.jobs = 2;
      machine.boot_plan(plan);
      // Both first steps wait for each other: the cut finds them running together.
      Overlap overlap(2, std::chrono::milliseconds(300));
      machine.executor.on_run = [&](const std::string& key) { overlap.enter(key); };
      if (torn) {
        machine.slots.tear_write(point, 10);
      } else {
        machine.slots.fail_write(point);
      }
      for (Phase phase : kAllPhases) {
        auto result = machine.try_run(phase);
        if (!result || result->exit != PhaseExit::Ok) break;
      }
      machine.executor.on_run = nullptr;
      const State cut = machine.state();
      if (!cut.attempt || cut.attempt->state != AttemptState::Complete) {
        boot_to_completion(machine, 6);
      }
      const State state = machine.state();
      CHECK(state.attempt->state == AttemptState::Complete);
      for (const std::string& key : steps) {
        CAPTURE(key);
        CHECK(machine.executor.applied(key) == 1);
      }
      for (const char* id : {"a", "b", "c"}) {
        CHECK(state.find(id)->state == MigrationState::Applied);
      }
      ++cases;
    }
  }
  CHECK(cases == 2 * writes);
}

namespace {
class TimeoutSink final : public EventSink {
 public:
  void event(Event, std::string_view) override {}
  void extend_timeout(std::uint64_t usec) override { extensions.push_back(usec); }
  std::vector<std::uint64_t> extensions;
};
}  // namespace

TEST_CASE("parallel runner: a short step started beside a long one keeps the long one's timeout") {
  // Each EXTEND_TIMEOUT_USEC sets the unit's deadline anew from now: the 30 s step started
  // second gave the unit 90 s while the 600 s step still ran.
  FakeSlotStorage slots;
  StateStore durable(slots);
  StoreAccess store(durable);
  FakeBootLoader loader = FakeBootLoader::counting("entry-2", 3, 0);
  FakeExecutor executor;
  Overlap overlap(2, std::chrono::seconds(5));
  executor.on_run = [&](const std::string& key) { overlap.enter(key); };
  TimeoutSink sink;
  PhaseEffects effects;
  effects.store = &store;
  effects.boot_loader = &loader;
  effects.executors = {{StepKind::Command, &executor}};
  effects.events = &sink;
  effects.jobs = 2;
  Plan plan = must_parse(plan_json(
      kGen2, migration("long", command_step("s")) + "," +
                 migration("short", command_step("s", "post-activation", R"(,"timeout":30)"))));
  auto result = run_phase(Phase::PostActivation, plan, BootFacts{"boot-1", kGen2, 1}, effects);
  REQUIRE(result.has_value());
  CHECK(overlap.most == 2);
  REQUIRE(sink.extensions.size() == 2);
  CHECK(sink.extensions[0] == 660'000'000);
  CHECK(sink.extensions[1] > 650'000'000);  // what is left of the long step's 660 s
  CHECK(sink.extensions[1] <= 660'000'000);
}
