// Pipeline files (YAML) and the settings they carry: parse, then validate every section the way
// the commands do before starting work.
import Foundation
import TesseraPipeline

func fuzzPipeline(_ bytes: UnsafeRawBufferPointer) {
    let path = scratchFile("pipeline.yaml", bytes)
    guard let file = try? PipelineFile.load(path: path) else { return }
    if let t = file.tile { _ = try? t.validate() }
    if let v = file.views { _ = try? v.validate() }
    if let t = file.train { _ = try? t.validate() }
}
