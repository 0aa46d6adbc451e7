"""Interoperability with other standards: 1EdTech CASE 1.1 packages in and out."""
