// The pure systemd-boot model: every expectation here is what boot.c (252) does, with the
// function that decides it named in the test.
#include <doctest/doctest.h>

#include "tests/bootsim/sdboot.hpp"

using namespace bootsim;

namespace {

Entry entry(const std::string& file, const std::string& version_line = "",
            const std::string& sort_key = "nixos", LoaderVersion loader = LoaderVersion::V252) {
  std::string text = "title NixOS\nlinux /k.efi\noptions init=/nix/store/x/init\n";
  if (!version_line.empty()) text += "version " + version_line + "\n";
  if (!sort_key.empty()) text += "sort-key " + sort_key + "\n";
  auto parsed = parse_entry(file, text, loader);
  REQUIRE(parsed);
  return *parsed;
}

std::vector<std::string> order(std::vector<Entry> entries) {
  sort_entries(entries);
  std::vector<std::string> names;
  for (const auto& e : entries) names.push_back(e.file_name);
  return names;
}

}  // namespace

TEST_CASE("strverscmp_improved: newer compares greater, numbers by value") {
  CHECK(version_compare(std::string("Generation 10"), std::string("Generation 9")) > 0);
  CHECK(version_compare(std::string("123~rc1"), std::string("123")) < 0);
  CHECK(version_compare(std::string("123-1"), std::string("123.a-1")) < 0);
  CHECK(version_compare(std::string("123a-1"), std::string("123.1-1")) > 0);
  CHECK(version_compare(std::string("124-1"), std::string("123a-1")) > 0);
  CHECK(version_compare(std::string("00123"), std::string("123")) == 0);
  CHECK(version_compare(std::string("abc"), std::string("abcde")) < 0);
  CHECK(version_compare(std::nullopt, std::string("1")) < 0);
}

TEST_CASE("config_entry_parse_tries: the counter after the last '+' before the suffix") {
  auto c = parse_counter("nixos-abc+3-0.conf", ".conf");
  REQUIRE(c);
  CHECK(c->left == 3);
  CHECK(c->done == 0);
  CHECK(c->prefix_len == 9);
  c = parse_counter("nixos-abc+3.conf", ".conf");
  REQUIRE(c);
  CHECK(c->left == 3);
  CHECK_FALSE(c->done_written);
  CHECK_FALSE(parse_counter("nixos-abc.conf", ".conf"));
  CHECK_FALSE(parse_counter("a+1x.conf", ".conf"));   // counter in the middle
  CHECK_FALSE(parse_counter("a+-1.conf", ".conf"));   // no LEFT digits
  CHECK_FALSE(parse_counter("a+1-.conf", ".conf"));   // '-' without DONE digits
  CHECK_FALSE(parse_counter("a+3-0.CONF", ".conf"));  // the suffix compare is exact
  CHECK(parse_counter("a+b+2-1.conf", ".conf")->prefix_len == 3);
}

TEST_CASE("config_entry_bump_counters: LEFT-1, DONE+1, bad entries keep counting DONE") {
  auto next = [](const std::string& name) {
    return next_counter_name(name, *parse_counter(name, ".conf"), ".conf");
  };
  CHECK(next("nixos-abc+3-0.conf") == "nixos-abc+2-1.conf");
  CHECK(next("nixos-abc+3.conf") == "nixos-abc+2-1.conf");
  CHECK(next("nixos-abc+1-2.conf") == "nixos-abc+0-3.conf");
  CHECK(next("nixos-abc+0-3.conf") == "nixos-abc+0-4.conf");
}

TEST_CASE("entry ids: the lowercased file name — 257 drops the counter") {
  CHECK(entry_id("NixOS-ABC+3-0.conf", LoaderVersion::V252) == "nixos-abc+3-0.conf");
  CHECK(entry_id("nixos-abc+3-0.conf", LoaderVersion::V257) == "nixos-abc.conf");
  CHECK(entry_id("nixos-abc.conf", LoaderVersion::V257) == "nixos-abc.conf");
}

TEST_CASE("config_entry_add_type1: which files are entries") {
  CHECK_FALSE(parse_entry("x.txt", "linux /k\n", LoaderVersion::V252));
  CHECK_FALSE(parse_entry("auto-x.conf", "linux /k\n", LoaderVersion::V252));
  CHECK_FALSE(parse_entry(".x.conf", "linux /k\n", LoaderVersion::V252));
  CHECK_FALSE(parse_entry("x.conf", "title no kernel\n", LoaderVersion::V252));
  CHECK_FALSE(parse_entry("x.conf", "linux /k\narchitecture aa64\n", LoaderVersion::V252));
  auto e = parse_entry("X.CONF", "linux /k\noptions a=1\noptions  b=2\n# c\n", LoaderVersion::V252);
  REQUIRE(e);
  CHECK(e->options == "a=1 b=2");
  CHECK(e->id == "x.conf");
  CHECK(e->tries_left() == -1);
}

TEST_CASE("config_entry_compare: newest generation first, bad entries last") {
  CHECK(
      order({entry("nixos-a+3-0.conf", "Generation 9"), entry("nixos-b.conf", "Generation 10")}) ==
      std::vector<std::string>{"nixos-b.conf", "nixos-a+3-0.conf"});
  CHECK(
      order({entry("nixos-b+0-3.conf", "Generation 10"), entry("nixos-a.conf", "Generation 9")}) ==
      std::vector<std::string>{"nixos-a.conf", "nixos-b+0-3.conf"});
  // Without sort keys: by id, descending (version-aware).
  CHECK(order({entry("gen-9.conf", "", ""), entry("gen-10.conf", "", "")}) ==
        std::vector<std::string>{"gen-10.conf", "gen-9.conf"});
  // Entries with a sort key go before those without.
  CHECK(order({entry("z.conf", "", ""), entry("a.conf", "1", "nixos")}) ==
        std::vector<std::string>{"a.conf", "z.conf"});
  // Same id (one counted twice is impossible on one ESP, but the tie-breaks are defined):
  // more tries left first, then fewer tries done.
  auto a = entry("x+2-1.conf", "1");
  auto b = entry("x+2-1.conf", "1");
  b.counter->left = 3;
  CHECK(entry_before(b, a));
}

TEST_CASE("config_default_entry_select: one-shot, LoaderEntryDefault, default pattern, first") {
  std::vector<Entry> sorted = {entry("nixos-b+2-1.conf", "Generation 2"),
                               entry("nixos-a.conf", "Generation 1")};
  sort_entries(sorted);
  SelectionInput in;
  auto s = select_entry(sorted, in);
  REQUIRE(s);
  CHECK(s->index == 0);
  CHECK(s->by == ChosenBy::FirstEntry);

  in.conf = parse_loader_conf("timeout 0\ndefault nixos-*\n");
  s = select_entry(sorted, in);
  CHECK(s->by == ChosenBy::DefaultPattern);
  CHECK(sorted[s->index].file_name == "nixos-b+2-1.conf");

  in.entry_default = "nixos-a.conf";
  s = select_entry(sorted, in);
  CHECK(s->by == ChosenBy::DefaultVariable);
  CHECK(sorted[s->index].file_name == "nixos-a.conf");

  in.one_shot = "NIXOS-B+2-1.conf";  // patterns are case-folded
  s = select_entry(sorted, in);
  CHECK(s->by == ChosenBy::OneShot);
  CHECK(sorted[s->index].file_name == "nixos-b+2-1.conf");

  // A one-shot without ".conf" matches nothing in 252 (ids are file names): falls through.
  in.one_shot = "nixos-a";
  CHECK(select_entry(sorted, in)->by == ChosenBy::DefaultVariable);
  CHECK_FALSE(select_entry({}, in));
}

TEST_CASE("a default pattern that matches a bad entry exactly still picks it") {
  std::vector<Entry> sorted = {entry("nixos-b+0-3.conf", "Generation 2"),
                               entry("nixos-a.conf", "Generation 1")};
  sort_entries(sorted);
  SelectionInput in;
  in.conf = parse_loader_conf("default nixos-b*\n");
  CHECK(sorted[select_entry(sorted, in)->index].file_name == "nixos-b+0-3.conf");
  in.conf = parse_loader_conf("default nixos-*\n");
  CHECK(sorted[select_entry(sorted, in)->index].file_name == "nixos-a.conf");
}

TEST_CASE("@saved picks LoaderEntryLastBooted — loader.conf parsing rules") {
  std::vector<Entry> sorted = {entry("nixos-b.conf", "Generation 2"),
                               entry("nixos-a.conf", "Generation 1")};
  SelectionInput in;
  in.conf = parse_loader_conf("default @saved\n");
  in.last_booted = "nixos-a.conf";
  CHECK(select_entry(sorted, in)->by == ChosenBy::SavedEntry);
  CHECK(sorted[select_entry(sorted, in)->index].file_name == "nixos-a.conf");

  const auto conf =
      parse_loader_conf("# comment\ndefault  \"NixOS-*\"\ntimeout 5\ndefault @bogus\n");
  CHECK(conf.default_pattern == "nixos-*");  // lowercased; the unsupported "@bogus" is ignored
  CHECK(conf.timeout == "5");
}

TEST_CASE("glob patterns as efi_fnmatch") {
  CHECK(pattern_matches("nixos-*", "nixos-abc+2-1.conf"));
  CHECK(pattern_matches("nixos-?bc.conf", "nixos-abc.conf"));
  CHECK(pattern_matches("nixos-[a-c]bc.conf", "nixos-abc.conf"));
  CHECK_FALSE(pattern_matches("nixos-abc", "nixos-abc.conf"));
  CHECK(pattern_matches("a\\*b", "a*b"));
}

TEST_CASE("systemd-bless-boot: good name, bad form and refusal without counter") {
  auto plan = plan_bless("nixos-abc+2-1.conf");
  REQUIRE(plan);
  CHECK(plan->target == "nixos-abc.conf");
  CHECK(plan->bad_source == "nixos-abc+0-1.conf");
  CHECK(plan_bless("nixos-abc+0.conf")->bad_source == "nixos-abc+0.conf");
  CHECK_FALSE(plan_bless("nixos-abc.conf"));
}
