import TesseraCore

enum TrainError {
    static func checkpoint(_ message: String) -> TesseraError { TesseraError(.corrupt, "checkpoint: " + message) }
}
