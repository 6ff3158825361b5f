// FoundationEssentials gives JSONDecoder, Data and Date without ICU (docs/facts.md, "Building
// the module": the full Foundation pulls ICU, about 50 MB, into the module). Every file of
// the core imports Foundation through this one re-export.
#if canImport(FoundationEssentials)
@_exported import FoundationEssentials
#else
@_exported import Foundation
#endif
