import "./styles.css";
import { main } from "./app.js";

main(document.getElementById("root"));
