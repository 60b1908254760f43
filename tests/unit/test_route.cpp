// Path -> low-cardinality route template.
#include <doctest/doctest.h>

#include "protocols/http1/route.h"

using weft::protocols::http1::route_template;

TEST_CASE("route_template: numbers become {id}") {
  CHECK(route_template("/users/42") == "/users/{id}");
  CHECK(route_template("/users/42/orders/7") == "/users/{id}/orders/{id}");
  CHECK(route_template("/0") == "/{id}");
  CHECK(route_template("/2024/report") == "/{id}/report");
  // Eight digits or more are still a number, not hex.
  CHECK(route_template("/orders/12345678901") == "/orders/{id}");
  // Numbers inside a word are part of the word.
  CHECK(route_template("/v1/users") == "/v1/users");
  CHECK(route_template("/-42") == "/-42");
}

TEST_CASE("route_template: UUIDs become {uuid}") {
  CHECK(route_template("/orders/6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4") == "/orders/{uuid}");
  CHECK(route_template("/orders/6F1C2B9E-3D4A-4B5C-8D6E-7F8091A2B3C4/items") ==
        "/orders/{uuid}/items");
  // Dashes in the wrong places: not a UUID, but a long token.
  CHECK(route_template("/x/6f1c2b9e3-d4a-4b5c-8d6e-7f8091a2b3c4") == "/x/{token}");
  CHECK(route_template("/x/6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c") == "/x/{token}");
  CHECK(route_template("/x/6f1c2b9e-3d4a-4b5c-8d6e-7f8091a2b3c4d") == "/x/{token}");
  CHECK(route_template("/x/abcdefab-abcd-abcd-abcd-abcdefabcdeg") ==
        "/x/abcdefab-abcd-abcd-abcd-abcdefabcdeg");
}

TEST_CASE("route_template: long hex with digits becomes {hex}") {
  CHECK(route_template("/commits/9fceb02d0ae598e95dc970b74767f19372d61af8") == "/commits/{hex}");
  CHECK(route_template("/blobs/deadbee1") == "/blobs/{hex}");
  CHECK(route_template("/blobs/DEADBEE1") == "/blobs/{hex}");
  // Seven characters are too short; letters only are a word.
  CHECK(route_template("/blobs/deadbe1") == "/blobs/deadbe1");
  CHECK(route_template("/blobs/deadbeef") == "/blobs/deadbeef");
  CHECK(route_template("/feedface/cafebabe") == "/feedface/cafebabe");
}

TEST_CASE("route_template: long token-like segments become {token}") {
  CHECK(route_template("/reset/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0") == "/reset/{token}");
  CHECK(route_template("/s/Ab3_def-GHIjkl~mnop=") == "/s/{token}");             // 20 characters
  CHECK(route_template("/s/Ab3_def-GHIjkl~mnop") == "/s/Ab3_def-GHIjkl~mnop");  // 19
  // Long without a digit: a (long) word.
  CHECK(route_template("/docs/getting-started-with-weft") == "/docs/getting-started-with-weft");
  // Characters outside the token alphabet keep the segment as it is.
  CHECK(route_template("/s/abc1234567890123456789!") == "/s/abc1234567890123456789!");
}

TEST_CASE("route_template: words, query, fragment, root and trailing slash") {
  CHECK(route_template("/") == "/");
  CHECK(route_template("") == "/");
  CHECK(route_template("/api/users") == "/api/users");
  CHECK(route_template("/api/users/") == "/api/users/");
  CHECK(route_template("/api/users/42/") == "/api/users/{id}/");
  CHECK(route_template("/search?q=42&page=7") == "/search");
  CHECK(route_template("/users/42?expand=1") == "/users/{id}");
  CHECK(route_template("/users/42#top") == "/users/{id}");
  CHECK(route_template("/?q=1") == "/");
  CHECK(route_template("/a//b") == "/a//b");
  CHECK(route_template("/healthz") == "/healthz");
}
