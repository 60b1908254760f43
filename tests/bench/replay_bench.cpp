// Replay throughput of the connection and protocol stages: a `weft record` file is read into
// memory once, then its events are pushed through a fresh ConnectionTracker `rounds` times.
//   usage: weft_replay_bench FILE [rounds]
// Prints events, exchanges and exchanges per second on one core (this thread).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "capture/record_file.h"
#include "conn/connection_tracker.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s RECORDING [rounds]\n", argv[0]);
    return 2;
  }
  int rounds = argc > 2 ? std::atoi(argv[2]) : 5;
  std::string error;
  auto reader = weft::capture::RecordReader::open(argv[1], &error);
  if (!reader) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  std::vector<weft::Event> events;
  while (reader->poll(std::chrono::milliseconds(0), [&](weft::Event&& e) { events.push_back(std::move(e)); })) {
  }
  if (!reader->error().empty()) {
    std::fprintf(stderr, "%s\n", reader->error().c_str());
    return 1;
  }

  uint64_t exchanges = 0;
  auto start = std::chrono::steady_clock::now();
  for (int r = 0; r < rounds; ++r) {
    weft::conn::ConnectionTracker tracker({}, [&](weft::Exchange&&) { ++exchanges; }, 0);
    for (const auto& e : events) tracker.on_event(e);
    tracker.close_all();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("events %zu  rounds %d  exchanges %llu  seconds %.3f  exchanges/s %.0f  events/s %.0f\n",
              events.size(), rounds, (unsigned long long)exchanges, seconds, exchanges / seconds,
              events.size() * rounds / seconds);
  return 0;
}
