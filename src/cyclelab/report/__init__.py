"""Tables, figures and sample grids a person reads first."""
