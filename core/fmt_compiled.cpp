// fmt's compiled part, built once here from the packaged headers. Debian ships fmt as a shared
// library only, and libfmt.so needs the shared libstdc++ that `bootstate` links statically
// (docs/PERFORMANCE.md (a)); fmt in header-only mode instead copies its formatting code into
// every translation unit (≈ 560 KB of the program's text were 90-odd copies of it). Without
// FMT_HEADER_ONLY every other file declares these functions, and this one defines them.
// FMT_STATIC_THOUSANDS_SEPARATOR: `{:L}` is never used, and without it fmt's compiled part
// refers to std::locale, which links the C++ locale and its facets (docs/PERFORMANCE.md (a)).
#define FMT_STATIC_THOUSANDS_SEPARATOR ','
#include <fmt/format.h>

#include <fmt/format-inl.h>

// format.h declares these two `extern template` when not header-only: the one definition.
FMT_BEGIN_NAMESPACE
namespace detail {
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl<char>(locale_ref) -> char;
}  // namespace detail
FMT_END_NAMESPACE
