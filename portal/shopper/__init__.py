"""The shoppers' self-invoicing flow: lookup outcomes, the cart, receptor data, the Constancia reader."""
