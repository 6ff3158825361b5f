// FoundationEssentials gives JSONDecoder, Data and Date without ICU (FACTS.md: the full
// Foundation adds ~50 MB to the module). Every file of the core imports Foundation through
// this one re-export.
#if canImport(FoundationEssentials)
@_exported import FoundationEssentials
#else
@_exported import Foundation
#endif
