#include "protocols/http1/http1.h"
#include "protocols/protocol.h"

namespace weft::protocols {

const std::vector<ProtocolSpec>& registry() {
  static const std::vector<ProtocolSpec> protocols = {
      {"http1", http1::detect, http1::create_handler},
  };
  return protocols;
}

}  // namespace weft::protocols
