"""One module per tab: each builds its UI and calls the engine. No model code lives here."""
